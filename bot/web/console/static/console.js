/* KeyMedic agent console: keeps the queue and the open ticket current without a reload.
   Polls the JSON views every POLL_MS with If-None-Match (an unchanged view costs a 304), and announces what
   is new in the page's live region. Plain script, no build step; the pages work without it, only not live. */
(function () {
  "use strict";
  var POLL_MS = 1500;
  var page = document.body.getAttribute("data-page") || "";
  var live = document.getElementById("live");

  function announce(text) {
    if (live) { live.textContent = text; }
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function waited(since) {
    var s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min"; }
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function poller(url, onData) {
    var etag = null;
    function tick() {
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) { window.location.assign("/agent/sign-in"); return null; }
          if (response.status !== 200) { return null; }
          etag = response.headers.get("ETag");
          return response.json();
        })
        .then(function (data) { if (data) { onData(data); } })
        .catch(function () { /* the next tick retries */ })
        .then(function () { window.setTimeout(tick, POLL_MS); });
    }
    tick();
  }

  function queue() {
    var body = document.getElementById("queue-rows");
    var known = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-ticket]"), function (row) {
      known[row.getAttribute("data-ticket")] = true;
    });
    poller("/agent/queue.json", function (data) {
      var fresh = [];
      body.textContent = "";
      if (!data.tickets.length) {
        var empty = el("tr"); var cell = el("td", "No open tickets."); cell.colSpan = 6;
        empty.appendChild(cell); body.appendChild(empty);
      }
      data.tickets.forEach(function (t) {
        var row = el("tr"); row.setAttribute("data-ticket", String(t.id));
        var first = el("td"); var link = el("a", "#" + t.id); link.href = "/agent/ticket/" + t.id;
        first.appendChild(link); row.appendChild(first);
        row.appendChild(el("td", t.user || "unknown"));
        row.appendChild(el("td", t.exchange || "—"));
        row.appendChild(el("td", t.reason));
        row.appendChild(el("td", waited(t.waiting_since)));
        row.appendChild(el("td", t.bot_paused ? "paused" : "answering"));
        body.appendChild(row);
        if (!known[String(t.id)]) { fresh.push(t); known[String(t.id)] = true; }
      });
      if (fresh.length) {
        announce(fresh.map(function (t) {
          return "New ticket #" + t.id + " from " + (t.user || "unknown") + ": " + t.reason;
        }).join(". "));
      }
    });
  }

  function ticket(id) {
    var list = document.getElementById("transcript");
    var seen = list.children.length;
    var labels = { user: "User", bot: "Bot", agent: "Agent" };
    poller("/agent/ticket/" + id + ".json", function (data) {
      var t = data.ticket;
      list.textContent = "";
      t.transcript.forEach(function (turn) {
        var item = el("li", null, "turn " + turn.role);
        var who = (labels[turn.role] || turn.role) + (turn.agent ? " (" + turn.agent + ")" : "") + ":";
        item.appendChild(el("span", who, "who"));
        item.appendChild(document.createTextNode(" " + turn.text));
        list.appendChild(item);
      });
      var added = t.transcript.slice(seen).filter(function (turn) { return turn.role === "user"; });
      if (added.length) { announce("The user wrote: " + added[added.length - 1].text); }
      seen = t.transcript.length;
      document.getElementById("ticket-status").textContent = t.status;
      document.getElementById("bot-state").textContent = t.bot_paused ? "paused" : "answering";
      document.getElementById("edits").textContent = t.edits_phrase;
      var history = document.getElementById("history");
      history.textContent = "";
      t.history.forEach(function (h) {
        history.appendChild(el("li", h.at + ": " + h.action + " by " + h.by));
      });
      var notes = document.getElementById("notifications");
      notes.textContent = "";
      t.notifications.forEach(function (n) {
        notes.appendChild(el("li", n.delivery_id + ": " + n.status + " after " + n.attempts + " attempt(s)"
          + (n.last_error ? " — last error: " + n.last_error : "")));
      });
    });
  }

  function setPassword() {
    // The link's token travels in the fragment (never sent to a server); move it into the form, then drop
    // it from the address bar and the history.
    var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      document.getElementById("link-token").value = decodeURIComponent(match[1]);
      window.history.replaceState(null, "", window.location.pathname);
    }
  }

  if (page === "queue") { queue(); }
  else if (page.indexOf("ticket:") === 0) { ticket(page.slice(7)); }
  else if (page === "set-password") { setPassword(); }
}());
