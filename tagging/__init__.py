"""Customer tagging and profiling (客户标签与画像): tags in groups, auto-tags from what
customers write, profile dimensions, RFM/ABC value, segments, duplicate merge, import."""
