// crmbot WeCom chat sidebar: sign wx.agentConfig on the server, ask the WeCom bridge
// which chat this is, then show and edit the customer card over JSON.
(function () {
  "use strict";
  const root = document.getElementById("sidebar");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let customerId = null;

  function status(text) {
    $("status").textContent = text || "";
    $("status").hidden = !text;
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: body instanceof FormData ? { "X-CSRF-Token": csrf }
        : { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body instanceof FormData ? body : JSON.stringify(body),
    };
    init.credentials = "same-origin";
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => ({ error: resp.statusText }));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // the WeCom JS bridge: wx (jweixin + jwxwork) or ww, answering invoke(name, args, cb)
  function bridge() { return window.wx || window.ww; }

  function invoke(name, args) {
    return new Promise((resolve, reject) => {
      bridge().invoke(name, args || {}, (res) => {
        const msg = (res && res.err_msg) || "";
        if (msg.endsWith(":ok")) resolve(res); else reject(new Error(msg || name));
      });
    });
  }

  async function configure() {
    const url = location.href.split("#")[0];
    const signed = await api("/sidebar/api/config?url=" + encodeURIComponent(url));
    const wx = bridge();
    if (!wx) throw new Error("WeCom JS-SDK missing: open this page inside WeCom");
    if (wx.config) wx.config(signed.config);
    await new Promise((resolve, reject) => {
      wx.agentConfig(Object.assign({}, signed.agentConfig, {
        success: resolve,
        fail: (res) => reject(new Error((res && res.errMsg) || "agentConfig failed")),
      }));
    });
  }

  function renderCard(card) {
    customerId = card.customer.id;
    $("customer").hidden = false;
    $("c-name").textContent = card.customer.name || "#" + card.customer.id;
    $("c-owner").textContent = card.customer.owner || "";
    $("c-contact").textContent = [card.customer.phone, card.customer.email].filter(Boolean).join(" · ");
    $("c-optout").hidden = card.opt_outs.length === 0;
    const tags = $("tags");
    tags.replaceChildren();
    for (const t of card.tags) {
      const chip = el("li", t.group + "/" + t.name, "chip");
      chip.style.borderColor = t.color;
      const rm = el("button", "×", "chip-x");
      rm.type = "button";
      rm.setAttribute("aria-label", "remove " + t.name);
      rm.addEventListener("click", () => editTag(t.id, true));
      chip.append(rm);
      tags.append(chip);
    }
    const select = $("tag-add");
    select.replaceChildren();
    const have = new Set(card.tags.map((t) => t.id));
    for (const g of card.tag_catalogue) {
      const group = el("optgroup");
      group.label = g.name;
      for (const t of g.tags) {
        if (have.has(t.id)) continue;
        const opt = el("option", t.name);
        opt.value = t.id;
        group.append(opt);
      }
      if (group.children.length) select.append(group);
    }
    for (const b of $("intent").querySelectorAll("button")) {
      b.classList.toggle("on", b.dataset.level === card.profile.intent_level);
    }
    const profile = $("profile");
    profile.replaceChildren();
    for (const [key, value] of Object.entries(card.profile)) {
      if (value === null || value === undefined || value === "") continue;
      profile.append(el("dt", key), el("dd", String(value)));
    }
    $("followers").textContent = card.followers.map((f) => f.name + (f.status === "active" ? "" : " (" + f.status + ")")).join("、");
    const faq = $("faq");
    faq.replaceChildren();
    for (const f of card.faq) {
      const item = el("li");
      item.append(el("strong", f.question), el("p", f.answer));
      item.append(sendButton({ kind: "text", body: f.answer }));
      faq.append(item);
    }
    const timeline = $("timeline");
    timeline.replaceChildren();
    for (const m of card.timeline) {
      const item = el("li", null, m.direction === "in" ? "in" : "out");
      item.append(el("span", m.channel + " · " + m.at.slice(0, 16).replace("T", " "), "muted"));
      item.append(el("p", m.text || "[" + m.kind + "]"));
      timeline.append(item);
    }
    const notes = $("notes");
    notes.replaceChildren();
    for (const n of card.notes) notes.append(el("li", n.author + ": " + n.text));
  }

  async function loadCustomer(path) {
    try {
      renderCard(await api(path));
      status("");
    } catch (err) {
      status(err.message);
    }
  }

  async function reloadCard() {
    if (customerId !== null) await loadCustomer("/sidebar/api/customer?id=" + customerId);
  }

  async function editTag(tagId, remove) {
    try {
      await api("/sidebar/api/tags", { customer_id: customerId, tag_id: Number(tagId), remove: remove });
      await reloadCard();
    } catch (err) { status(err.message); }
  }

  async function chatMessage(item) {
    if (item.kind === "text") return { msgtype: "text", text: { content: item.body } };
    if (item.kind === "link") {
      return { msgtype: "news", news: { link: item.url, title: item.title, desc: item.body, imgUrl: item.image_url } };
    }
    const media = await api("/sidebar/api/media?material=" + item.key.slice(1));
    return item.kind === "image"
      ? { msgtype: "image", image: { mediaid: media.media_id } }
      : { msgtype: "file", file: { mediaid: media.media_id } };
  }

  function sendButton(item) {
    const button = el("button", "↗", "send");
    button.type = "button";
    button.title = "sendChatMessage";
    button.addEventListener("click", async () => {
      try {
        await invoke("sendChatMessage", Object.assign({ enterChat: false }, await chatMessage(item)));
        status(root.dataset.msgSent);
      } catch (err) {
        status(root.dataset.msgFailed + " " + err.message);
      }
    });
    return button;
  }

  async function loadLibrary() {
    const q = $("lib-q").value.trim();
    const data = await api("/sidebar/api/materials" + (q ? "?q=" + encodeURIComponent(q) : ""));
    const list = $("lib");
    list.replaceChildren();
    for (const item of data.items) {
      const row = el("li", null, "lib-item");
      row.dataset.key = item.key;
      const text = el("div");
      text.append(el("strong", item.title), el("p", item.kind === "link" ? item.url : item.body || item.filename, "muted"));
      row.append(text, sendButton(item));
      list.append(row);
    }
  }

  async function loadGroup(chatId) {
    const group = await api("/sidebar/api/group?chat_id=" + encodeURIComponent(chatId));
    $("group").hidden = false;
    $("g-name").textContent = group.name;
    const list = $("g-members");
    list.replaceChildren();
    for (const m of group.members) {
      const item = el("li", m.name || m.userid, m.external ? "external" : "member");
      if (m.customer_id) {
        const open = el("button", "›", "send");
        open.type = "button";
        open.addEventListener("click", () => loadCustomer("/sidebar/api/customer?id=" + m.customer_id));
        item.append(open);
      }
      list.append(item);
    }
    status("");
  }

  function wireForms() {
    $("tag-add-btn").addEventListener("click", () => {
      const value = $("tag-add").value;
      if (value) editTag(value, false);
    });
    for (const b of $("intent").querySelectorAll("button")) {
      b.addEventListener("click", async () => {
        try {
          await api("/sidebar/api/intent", { customer_id: customerId, level: b.dataset.level });
          await reloadCard();
        } catch (err) { status(err.message); }
      });
    }
    $("note-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const form = ev.target;
      try {
        await api("/sidebar/api/notes", { customer_id: customerId, text: form.text.value });
        form.reset();
        await reloadCard();
      } catch (err) { status(err.message); }
    });
    $("followup-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const form = ev.target;
      try {
        await api("/sidebar/api/follow-ups", { customer_id: customerId, at: form.at.value, text: form.text.value });
        form.reset();
        status(root.dataset.msgSaved);
      } catch (err) { status(err.message); }
    });
    $("material-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("/sidebar/api/materials", new FormData(ev.target));
        ev.target.reset();
        await loadLibrary();
      } catch (err) { status(err.message); }
    });
    let timer = null;
    $("lib-q").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => loadLibrary().catch((err) => status(err.message)), 200);
    });
  }

  async function start() {
    wireForms();
    loadLibrary().catch((err) => status(err.message));
    try {
      await configure();
      const context = await invoke("getContext");
      if (context.entry === "group_chat_tools") {
        const chat = await invoke("getCurExternalChat");
        await loadGroup(chat.chatId);
      } else {
        const contact = await invoke("getCurExternalContact");
        await loadCustomer("/sidebar/api/contact?external_userid=" + encodeURIComponent(contact.userId));
      }
    } catch (err) {
      status(err.message);
    }
  }

  start();
})();
