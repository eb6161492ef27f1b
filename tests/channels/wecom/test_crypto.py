"""Known-answer tests for the WeCom callback crypto against the three public vector sets.

Sources (constants are public test data):
- wechatpy tests/test_crypto.py (CryptoTestCase): token 123456, corp wx49f0ab532d5d035a
- Official doc 90968 "加解密方案说明" sample: token QDG6eK, corp wx5823bf96d3bd56c7
- Tencent's Python sample (weworkapi_python callback/Sample.py): corp ww1436e0e65a779aee, "你好"
"""

from __future__ import annotations

import base64
import contextlib
import xml.etree.ElementTree as ET  # noqa: S405  (parsing our own known-answer plaintext)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.wecom.crypto import (
    DecryptFailed,
    IllegalAesKey,
    InvalidSignature,
    ReceiverMismatch,
    WeComCrypto,
    WeComCryptoError,
    signature,
)

WECHATPY = WeComCrypto(
    "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
)
OFFICIAL = WeComCrypto(
    "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
)
TENCENT_PY = WeComCrypto(
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)


def test_wechatpy_url_verification_vector() -> None:
    echostr = (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    )
    plain = WECHATPY.decrypt_checked(
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", echostr
    )
    assert plain == b"5927782489442352469"


def test_wechatpy_signature_with_wrong_nonce_fails() -> None:
    echostr = (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    )
    with pytest.raises(InvalidSignature):
        WECHATPY.check_signature(
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", echostr
        )


def test_wechatpy_decrypt_vector() -> None:
    enc = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
    plain = WECHATPY.decrypt_checked(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", enc
    )
    root = ET.fromstring(plain)  # noqa: S314
    assert root.findtext("Content") == "test"
    assert root.findtext("FromUserName") == "messense"


def test_wechatpy_encrypt_vector_with_fixed_random() -> None:
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
        "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    enc = WECHATPY.encrypt(reply.encode(), random16=b"1234567890123456")
    assert enc == (
        "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
    )
    assert (
        signature("123456", "1411525903", "461056294", enc)
        == "407518b7649e86ef23978113f92d27afa9296533"
    )


def test_official_doc_url_verification_vector() -> None:
    echostr = (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    )
    plain = OFFICIAL.decrypt_checked(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", echostr
    )
    assert plain == b"1616140317555161061"


def test_official_doc_decrypt_vector_with_pad_30() -> None:
    enc = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
    plain = OFFICIAL.decrypt_checked(
        "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", enc
    )
    root = ET.fromstring(plain)  # noqa: S314
    assert root.findtext("Content") == "hello"
    assert root.findtext("FromUserName") == "mycreate"
    assert root.findtext("MsgId") == "4561255354251345929"
    assert root.findtext("AgentID") == "218"


def test_tencent_python_sample_url_verification_vector() -> None:
    echostr = (
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    )
    plain = TENCENT_PY.decrypt_checked(
        "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", echostr
    )
    assert plain == b"1288432023552776189"


def test_tencent_python_sample_chinese_content() -> None:
    enc = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
    plain = TENCENT_PY.decrypt_checked(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", enc
    )
    root = ET.fromstring(plain)  # noqa: S314
    assert root.findtext("Content") == "你好"
    assert root.findtext("AgentID") == "1000002"


def test_round_trip_pads_to_32_byte_blocks() -> None:
    for size in range(0, 80):
        msg = ("字" * size).encode()
        enc = OFFICIAL.encrypt(msg)
        assert len(base64.b64decode(enc)) % 32 == 0
        assert OFFICIAL.decrypt(enc) == msg


def test_message_for_another_corp_is_refused() -> None:
    other = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwSomeoneElse")
    with pytest.raises(ReceiverMismatch):
        OFFICIAL.decrypt(other.encrypt(b"<xml/>"))


@pytest.mark.parametrize("key", ["short", "x" * 44, "!" * 43])
def test_bad_encoding_aes_key_is_a_typed_error(key: str) -> None:
    with pytest.raises(IllegalAesKey):
        WeComCrypto("t", key, "c")


@pytest.mark.parametrize(
    "enc",
    [
        "",
        "not base64!!",
        "AAAA",
        base64.b64encode(b"x" * 32).decode(),
        base64.b64encode(b"\x00" * 15).decode(),
    ],
)
def test_malformed_ciphertext_is_a_typed_error(enc: str) -> None:
    with pytest.raises(DecryptFailed):
        OFFICIAL.decrypt(enc)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=256))
def test_decrypt_raises_only_typed_errors_on_arbitrary_input(data: bytes) -> None:
    with contextlib.suppress(WeComCryptoError):
        OFFICIAL.decrypt(base64.b64encode(data).decode())
