// crmbot console: live updates (server-sent events), alerts, keyboard shortcuts.
// No framework, nothing loaded from elsewhere (the CSP allows only this origin).
(function () {
  "use strict";
  const body = document.body;
  const ALERTS_KEY = "crmbot.alerts";

  function beep() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.3);
    } catch (e) { /* no audio: the badge still updates */ }
  }

  function alertsOn() { return localStorage.getItem(ALERTS_KEY) === "1"; }

  function notify(event) {
    if (!alertsOn() || event.direction !== "in") return;
    beep();
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      new Notification(body.dataset.newMessage + ": " + event.customer_name, { body: event.preview, tag: "conv-" + event.conversation_id });
    }
  }

  const alerts = document.getElementById("alerts");
  if (alerts) {
    alerts.checked = alertsOn();
    alerts.addEventListener("change", function () {
      localStorage.setItem(ALERTS_KEY, alerts.checked ? "1" : "0");
      if (alerts.checked && "Notification" in window && Notification.permission === "default") {
        Notification.requestPermission();
      }
    });
  }

  // the mobile menu
  const toggle = document.querySelector(".menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const nav = document.getElementById("main-nav");
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // filters submit on change
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  function setBadge(total) {
    const badge = document.getElementById("unread-total");
    if (!badge) return;
    badge.textContent = String(total);
    badge.hidden = !total;
  }

  let refreshing = null;
  function refreshInbox() {
    const list = document.getElementById("inbox-list");
    if (!list) return;
    if (refreshing) return;
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    refreshing = fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        const selected = document.querySelector(".conversations li.selected");
        const selectedId = selected ? selected.dataset.conversation : null;
        list.innerHTML = html;
        const ul = list.querySelector("ul.conversations");
        if (ul) setBadge(Number(ul.dataset.unreadTotal || 0));
        if (selectedId) {
          const again = list.querySelector('li[data-conversation="' + selectedId + '"]');
          if (again) again.classList.add("selected");
        }
      })
      .finally(function () { refreshing = null; });
  }

  const page = document.querySelector("[data-conversation-page]");
  function appendMessages() {
    if (!page) return;
    const id = page.dataset.conversationPage;
    fetch("/conversations/" + id + "/messages?after=" + page.dataset.last, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (!html.trim()) return;
        const timeline = document.getElementById("timeline");
        const tmp = document.createElement("ol");
        tmp.innerHTML = html;
        tmp.querySelectorAll("li.msg").forEach(function (li) {
          const existing = timeline.querySelector('li[data-message="' + li.dataset.message + '"]');
          if (existing) existing.replaceWith(li); else timeline.appendChild(li);
          page.dataset.last = String(Math.max(Number(page.dataset.last), Number(li.dataset.message)));
        });
        timeline.lastElementChild && timeline.lastElementChild.scrollIntoView({ block: "end" });
      });
  }

  if (body.dataset.live === "1" && "EventSource" in window) {
    const source = new EventSource("/live/events");
    source.addEventListener("open", function () { body.dataset.liveConnected = "1"; });
    source.addEventListener("error", function () { body.dataset.liveConnected = "0"; });
    source.addEventListener("message", function (e) {
      const event = JSON.parse(e.data);
      notify(event);
      refreshInbox();
      if (page && String(event.conversation_id) === page.dataset.conversationPage) {
        appendMessages();
      } else if (event.direction === "in") {
        const badge = document.getElementById("unread-total");
        if (badge && !document.getElementById("inbox-list")) setBadge(Number(badge.textContent || 0) + 1);
      }
    });
  }

  // a broadcast's page follows its runs while one is under way (the store has the counts)
  const WATCH_MS = 2000;
  function watchRuns() {
    const runs = document.getElementById("runs");
    if (!runs || runs.dataset.runsLive !== "1") return;
    setTimeout(function () {
      fetch(window.location.pathname + "?partial=runs", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            const tmp = document.createElement("div");
            tmp.innerHTML = html;
            const fresh = tmp.querySelector("#runs");
            if (fresh) runs.replaceWith(fresh);
          }
        })
        .finally(watchRuns);
    }, WATCH_MS);
  }
  watchRuns();

  // quick replies fill the reply box
  document.querySelectorAll("select[data-quick-replies]").forEach(function (sel) {
    sel.addEventListener("change", function () {
      const box = sel.form.querySelector("textarea[name=text]");
      if (sel.value) { box.value = box.value ? box.value + " " + sel.value : sel.value; box.focus(); }
      sel.value = "";
    });
  });

  // keyboard: j/k move through the inbox, Enter opens, Ctrl+Enter sends
  document.addEventListener("keydown", function (e) {
    const target = e.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && target.form && target.tagName === "TEXTAREA") {
        e.preventDefault();
        target.form.requestSubmit();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const items = Array.from(document.querySelectorAll(".conversations li[data-conversation]"));
    if (!items.length) return;
    let index = items.findIndex(function (li) { return li.classList.contains("selected"); });
    if (e.key === "j" || e.key === "k") {
      if (index >= 0) items[index].classList.remove("selected");
      index = e.key === "j" ? Math.min(index + 1, items.length - 1) : Math.max(index - 1, 0);
      items[index].classList.add("selected");
      items[index].scrollIntoView({ block: "nearest" });
      e.preventDefault();
    } else if (e.key === "Enter" && index >= 0) {
      window.location.href = items[index].querySelector("a").href;
    }
  });
})();
