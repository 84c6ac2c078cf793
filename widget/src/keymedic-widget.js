/*
 * KeyMedic's chat widget (docs/widget.md): vanilla JS on socket.io-client 4.x, talking to Rasa's socket.io
 * channel (channels/socketio.py). Load socket.io-client first, then this file; it mounts itself on every
 * element with `data-keymedic-widget` (attributes `data-socket-url`, `data-token-url`), or a host app calls
 *
 *     KeyMedicWidget.mount(element, {socketUrl, socketPath?, getToken: () => Promise<jwt>})
 *
 * The host app's JWT says who the user is; the conversation id comes from it on the server, so the widget
 * never picks one. Secrets typed into the credential form go straight to the intake endpoint over fetch;
 * the bot only ever hears the opaque `pc_…` reference the intake answers with.
 */
(function () {
  "use strict";

  const CREDENTIAL_FORM = "keymedic_credential_form";
  const DISPLAY_KEY = "keymedic_display";
  const USED_FORMS_KEY = "keymedic-used-forms";
  // Refusal codes of the channel (docs/channels.md "Connection refusals"), in the user's words.
  const REFUSALS = {
    origin_not_allowed: "This page isn't allowed to open KeyMedic's chat.",
    missing_token: "You need to be signed in to chat with KeyMedic.",
    invalid_token: "Your sign-in could not be verified. Please sign in again.",
    token_expired: "Your sign-in expired. Reconnecting…",
    widget_not_configured: "The chat isn't set up on this server yet.",
    unavailable: "KeyMedic is unavailable right now. Trying again…",
  };
  // Refusals a fresh token or a moment's wait can fix; the others need a person to change something.
  const RETRYABLE = new Set(["token_expired", "unavailable"]);
  // If a turn never reports its end (a lost connection), the typing indicator still goes away.
  const TYPING_TIMEOUT_MS = 60000;
  const URL_PATTERN = /https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'"]/g;

  let idCounter = 0;
  function uid(prefix) {
    idCounter += 1;
    return "km-" + prefix + "-" + idCounter;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function hiddenText(text) {
    return el("span", { class: "km-visually-hidden", text: text });
  }

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function link(href, title) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, [
      title,
      hiddenText(" (opens in a new tab)"),
    ]);
  }

  // Text as text nodes (never HTML), with bare URLs made into links.
  function richText(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      fragment.append(text.slice(last, match.index));
      const href = safeUrl(match[0]);
      fragment.append(href ? link(href, match[0]) : match[0]);
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  function usedForms() {
    try {
      return JSON.parse(window.sessionStorage.getItem(USED_FORMS_KEY) || "[]");
    } catch (error) {
      return [];
    }
  }

  function rememberUsedForm(token) {
    // The token is spent once the intake accepted it; remembering it only keeps a reload from offering
    // the same form again.
    try {
      const used = usedForms().concat([token]).slice(-20);
      window.sessionStorage.setItem(USED_FORMS_KEY, JSON.stringify(used));
    } catch (error) {
      /* storage may be off; the intake still refuses a second use */
    }
  }

  // A history entry as the messages the channel would have sent live (channels/socketio.py WidgetOutput):
  // one per paragraph with the buttons on the last, then the custom payload, then the attachment.
  function expand(entry) {
    const parts = [];
    const extra = { timestamp: entry.ts, agent: entry.agent };
    if (entry.text || (entry.quick_replies && entry.quick_replies.length)) {
      const paragraphs = (entry.text || "").trim().split("\n\n");
      paragraphs.forEach((text, index) => {
        const part = Object.assign({ text: text }, extra);
        if (index === paragraphs.length - 1 && entry.quick_replies) part.quick_replies = entry.quick_replies;
        parts.push(part);
      });
    }
    if (entry.custom) parts.push(Object.assign({ custom: entry.custom }, extra));
    if (entry.attachment) parts.push(Object.assign({ attachment: entry.attachment }, extra));
    return parts;
  }

  class ChatWidget {
    constructor(root, options) {
      if (typeof window.io !== "function") throw new Error("load socket.io-client before keymedic-widget.js");
      this.root = root;
      this.getToken = options.getToken;
      this.sessionId = null;
      this.confirmed = false;
      this.historyLoaded = false;
      this.outbox = []; // messages typed while not connected: sent once the session is confirmed
      this.unkeyed = []; // user bubbles sent from this page, not yet matched to the tracker's events
      this.lastSent = null;
      this.resend = null;
      this.rendered = new Set();
      this.liveParts = new Map();
      this.paused = false;
      this.typingTimer = null;
      this.retryDelay = 1000;
      this.build();
      this.socket = window.io(options.socketUrl, {
        path: options.socketPath || "/socket.io",
        autoConnect: false,
        // Called on every (re)connection: a socket lives no longer than its token, so each one gets a fresh
        // token from the host app.
        auth: (callback) => {
          Promise.resolve()
            .then(() => this.getToken())
            .then(
              (token) => callback({ token: token }),
              () => callback({}),
            );
        },
      });
      this.listen();
      this.setConnection("Connecting…");
      this.socket.connect();
    }

    // -- the DOM ---------------------------------------------------------------------------------------

    build() {
      const titleId = uid("title");
      const inputId = uid("input");
      this.connection = el("p", { class: "km-connection", role: "status" });
      this.handoff = el("p", { class: "km-handoff", role: "status", hidden: true });
      this.log = el("div", {
        class: "km-log",
        role: "log",
        "aria-live": "polite",
        "aria-labelledby": titleId,
        tabindex: "0",
      });
      this.typing = el("div", { class: "km-typing", hidden: true }, [
        el("span", { class: "km-dots", "aria-hidden": "true" }, [el("span"), el("span"), el("span")]),
        el("span", { class: "km-typing-text", role: "status", text: "" }),
      ]);
      this.input = el("input", {
        id: inputId,
        class: "km-input",
        type: "text",
        autocomplete: "off",
        maxlength: "2000",
        placeholder: "Type your message",
      });
      this.inputLabel = el("label", { for: inputId, class: "km-visually-hidden", text: "Message to KeyMedic" });
      this.composer = el("form", { class: "km-composer", "aria-label": "Send a message" }, [
        this.inputLabel,
        this.input,
        el("button", { type: "submit", class: "km-send", text: "Send" }),
      ]);
      this.composer.addEventListener("submit", (event) => {
        event.preventDefault();
        const text = this.input.value.trim();
        if (!text) return;
        this.input.value = "";
        this.send(text);
      });
      const panel = el("section", { class: "km-panel", "aria-labelledby": titleId }, [
        el("header", { class: "km-header" }, [
          el("h2", { id: titleId, class: "km-title", text: "KeyMedic" }),
          this.connection,
        ]),
        this.handoff,
        this.log,
        this.typing,
        this.composer,
      ]);
      this.root.classList.add("km-widget");
      this.root.replaceChildren(panel);
    }

    setConnection(text) {
      this.connection.textContent = text;
    }

    scrollToEnd() {
      this.log.scrollTop = this.log.scrollHeight;
    }

    append(node) {
      this.log.append(node);
      this.scrollToEnd();
      return node;
    }

    bubble(role, label, agent) {
      const classes = "km-msg km-msg--" + role;
      const node = el("div", { class: classes });
      if (role === "agent") {
        node.append(el("p", { class: "km-sender", text: agent + " from support" }));
      } else {
        node.append(hiddenText(label));
      }
      return node;
    }

    showTyping() {
      if (this.paused) return; // a person answers at their own pace; no pretend typing
      this.typing.hidden = false;
      this.typing.querySelector(".km-typing-text").textContent = "KeyMedic is typing…";
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.hideTyping(), TYPING_TIMEOUT_MS);
    }

    hideTyping() {
      clearTimeout(this.typingTimer);
      this.typing.hidden = true;
      this.typing.querySelector(".km-typing-text").textContent = "";
    }

    setPaused(paused) {
      if (paused === this.paused) return;
      this.paused = paused;
      this.handoff.hidden = !paused;
      this.handoff.textContent = paused
        ? "You're talking with our support team now. A person will reply here."
        : "";
      this.inputLabel.textContent = paused ? "Message to support" : "Message to KeyMedic";
      this.root.classList.toggle("km-widget--handoff", paused);
      if (paused) this.hideTyping();
    }

    // -- rendering messages ----------------------------------------------------------------------------

    renderUser(text) {
      const node = this.bubble("user", "You said: ");
      node.append(el("p", { class: "km-text", text: text }));
      return this.append(node);
    }

    renderBot(message, options) {
      const live = !options || !options.history;
      const role = message.agent ? "agent" : "bot";
      if (message.custom && message.custom.type === CREDENTIAL_FORM) {
        const active = live || options.activeForm === message.custom;
        this.append(this.credentialForm(message.custom, active, live));
        return;
      }
      const node = this.bubble(role, "KeyMedic said: ", message.agent);
      if (message.text) node.append(el("p", { class: "km-text" }, [richText(message.text)]));
      const replies = message.quick_replies || [];
      const links = replies.filter((reply) => reply.content_type === "web_url" && safeUrl(reply.url));
      const choices = replies.filter((reply) => reply.content_type !== "web_url");
      if (links.length) {
        node.append(
          el(
            "ul",
            { class: "km-links" },
            links.map((reply) => el("li", {}, [link(safeUrl(reply.url), reply.title || reply.url)])),
          ),
        );
      }
      // Old buttons from the history would answer a question that is no longer asked.
      if (choices.length && (live || options.lastEntry)) node.append(this.choices(choices));
      const attachment = message.attachment;
      if (attachment && attachment.type === "image" && attachment.payload) {
        const src = safeUrl(attachment.payload.src);
        if (src) node.append(el("img", { class: "km-image", src: src, alt: "Image from KeyMedic" }));
      }
      if (node.childNodes.length > 1) this.append(node);
    }

    choices(replies) {
      const group = el("div", { class: "km-choices", role: "group", "aria-label": "Suggested replies" });
      for (const reply of replies) {
        const button = el("button", { type: "button", class: "km-choice", text: reply.title });
        button.addEventListener("click", () => {
          for (const other of group.querySelectorAll("button")) other.disabled = true;
          button.setAttribute("aria-pressed", "true");
          this.send(reply.payload, reply.title);
          this.input.focus();
        });
        group.append(button);
      }
      return group;
    }

    credentialForm(payload, active, live) {
      const exchange = payload.exchange_name || titleCase(payload.exchange);
      const titleId = uid("form-title");
      const card = el("div", { class: "km-msg km-msg--bot km-card" });
      if (!active || usedForms().includes(payload.token)) {
        card.append(el("p", { class: "km-text", text: "Secure key form (no longer usable)." }));
        return card;
      }
      const form = el("form", { class: "km-credform", "aria-labelledby": titleId, novalidate: true });
      form.append(
        el("h3", { id: titleId, class: "km-form-title", text: "Your new " + exchange + " API key" }),
        el("p", {
          class: "km-form-note",
          text:
            "This goes straight to KeyMedic's secure intake, never into the chat. The form works once, " +
            "for " + Math.round((payload.expires_in_s || 600) / 60) + " minutes.",
        }),
      );
      const inputs = [];
      for (const spec of payload.fields || []) {
        const id = uid("field");
        const hintId = spec.hint ? id + "-hint" : null;
        const errorId = id + "-error";
        const label = el("label", { for: id, text: spec.label + (spec.required ? "" : " (optional)") });
        let control;
        if (spec.choices && spec.choices.length) {
          control = el("select", { id: id, name: spec.name }, [el("option", { value: "", text: "Not sure" })]);
          for (const choice of spec.choices) control.append(el("option", { value: choice, text: choice }));
        } else {
          control = el("input", {
            id: id,
            name: spec.name,
            type: spec.secret ? "password" : "text",
            autocomplete: "off",
            autocapitalize: "off",
            spellcheck: "false",
            maxlength: spec.max_length || null,
            required: !!spec.required,
            "aria-required": spec.required ? "true" : null,
          });
        }
        control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
        const field = el("div", { class: "km-field" }, [label, control]);
        if (hintId) field.append(el("p", { id: hintId, class: "km-hint", text: spec.hint }));
        const error = el("p", { id: errorId, class: "km-field-error", hidden: true });
        field.append(error);
        form.append(field);
        inputs.push({ spec: spec, control: control, error: error });
      }
      const formError = el("p", { class: "km-form-error", role: "alert", hidden: true });
      const submit = el("button", { type: "submit", class: "km-submit", text: "Send key securely" });
      form.append(formError, submit);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submitCredentials(payload, { card, form, inputs, formError, submit });
      });
      card.append(form);
      // The user's next step is this form: take them there when they are using the chat right now, but not
      // while they are typing a message (the rest of it would land in the key field).
      const idle = document.activeElement !== this.input || !this.input.value;
      if (live && this.root.contains(document.activeElement) && idle && inputs.length) {
        setTimeout(() => inputs[0].control.focus(), 0);
      }
      return card;
    }

    async submitCredentials(payload, parts) {
      const { card, form, inputs, formError, submit } = parts;
      formError.hidden = true;
      for (const input of inputs) {
        input.error.hidden = true;
        input.error.textContent = "";
        input.control.removeAttribute("aria-invalid");
      }
      const body = { token: payload.token, wallet_id: payload.wallet_id };
      for (const input of inputs) {
        const value = input.control.value;
        if (input.spec.required && !value.trim()) {
          this.fieldError(input, "Enter the " + input.spec.label + ".");
          return;
        }
        if (value) body[input.spec.name] = value;
      }
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      let response = null;
      let answer = {};
      try {
        // The intake checks that the form is posted by the user it was made for: the same sign-in token as
        // the socket's (a fresh one from the host app).
        const headers = { "Content-Type": "application/json", Accept: "application/json" };
        const signIn = await Promise.resolve()
          .then(() => this.getToken())
          .catch(() => null);
        if (signIn) headers.Authorization = "Bearer " + signIn;
        response = await fetch(payload.submit_url, {
          method: "POST",
          headers: headers,
          body: JSON.stringify(body),
          credentials: "omit",
          cache: "no-store",
          referrerPolicy: "no-referrer",
        });
        answer = await response.json().catch(() => ({}));
      } catch (error) {
        response = null;
      }
      form.removeAttribute("aria-busy");
      submit.disabled = false;
      if (response && response.status === 201 && answer.reference) {
        rememberUsedForm(payload.token);
        // The secrets leave the page with the form; only the masked key stays.
        const masked = answer.api_key_masked || "";
        card.replaceChildren(
          el("p", {
            class: "km-text km-received",
            text: "Key received" + (masked ? " (" + masked + ")" : "") + ". It was not sent to the chat.",
          }),
        );
        const message = "/credentials_submitted" + JSON.stringify({ credential_ref: answer.reference });
        this.send(message, "I entered my new key in the secure form" + (masked ? " (" + masked + ")" : ""));
        this.input.focus();
        return;
      }
      if (!response) {
        this.formError(formError, "KeyMedic couldn't be reached. Your entries are still here; try again.");
        return;
      }
      const error = answer.error || {};
      const message = error.message || "KeyMedic couldn't accept the key (HTTP " + response.status + ").";
      const target = inputs.find((input) => input.spec.name === error.field);
      if (target) {
        this.fieldError(target, message);
        return;
      }
      if (["token_used", "token_expired", "token_unknown", "wrong_user", "wrong_wallet"].includes(error.code)) {
        submit.disabled = true;
        for (const input of inputs) input.control.disabled = true;
        this.formError(formError, message + " Ask me for a new form to try again.");
        return;
      }
      this.formError(formError, message);
    }

    fieldError(input, message) {
      input.error.textContent = message;
      input.error.hidden = false;
      input.control.setAttribute("aria-invalid", "true");
      input.control.focus();
    }

    formError(node, message) {
      node.textContent = message;
      node.hidden = false;
    }

    // -- the conversation ------------------------------------------------------------------------------

    send(text, display) {
      const message = { message: text };
      if (display) message.metadata = { [DISPLAY_KEY]: display };
      const bubble = this.renderUser(display || text);
      this.showTyping();
      if (this.confirmed && this.socket.connected) this.emit(message, bubble);
      else this.outbox.push([message, bubble]);
    }

    emit(message, bubble) {
      message.session_id = this.sessionId;
      this.lastSent = message;
      this.unkeyed.push(bubble);
      this.socket.emit("user_uttered", message);
    }

    onBotMessage(message) {
      const ts = message.timestamp;
      if (ts !== undefined) {
        const index = this.liveParts.get(ts) || 0;
        this.liveParts.set(ts, index + 1);
        const key = "b:" + ts + ":" + index;
        if (this.rendered.has(key)) return;
        this.rendered.add(key);
      }
      this.renderBot(message);
    }

    onHistory(history) {
      const entries = (history && history.messages) || [];
      const forms = entries.filter((entry) => entry.custom && entry.custom.type === CREDENTIAL_FORM);
      const latestForm = forms.length ? forms[forms.length - 1] : null;
      const now = Date.now() / 1000;
      const usable = latestForm && !latestForm.spent && latestForm.ts + (latestForm.custom.expires_in_s || 600) > now;
      const activeForm = usable ? latestForm.custom : null;
      this.log.setAttribute("aria-busy", "true");
      entries.forEach((entry, position) => {
        if (entry.role === "user") {
          const key = "u:" + entry.ts;
          if (this.rendered.has(key)) return;
          this.rendered.add(key);
          // A message this page sent: the server's copy is the redacted one.
          const mine = this.unkeyed.shift();
          if (mine) mine.querySelector(".km-text").textContent = entry.text;
          else this.renderUser(entry.text);
          return;
        }
        expand(entry).forEach((part, index) => {
          const key = "b:" + entry.ts + ":" + index;
          if (this.rendered.has(key)) return;
          this.rendered.add(key);
          this.renderBot(part, {
            history: true,
            lastEntry: position === entries.length - 1,
            activeForm: activeForm,
          });
        });
      });
      this.log.removeAttribute("aria-busy");
      this.historyLoaded = true;
      this.setPaused(!!(history && history.paused));
      this.scrollToEnd();
      if (this.resend) {
        const message = this.resend;
        this.resend = null;
        this.showTyping();
        this.socket.emit("user_uttered", Object.assign(message, { session_id: this.sessionId }));
      }
      const queued = this.outbox.splice(0);
      for (const [message, bubble] of queued) this.emit(message, bubble);
    }

    reconnectSoon(delay) {
      setTimeout(() => {
        if (!this.socket.connected) this.socket.connect();
      }, delay);
    }

    listen() {
      const socket = this.socket;
      socket.on("connect", () => {
        this.retryDelay = 1000;
        this.setConnection("Connected");
        this.confirmed = false;
        socket.emit("session_request", {});
      });
      socket.on("session_confirm", (sessionId) => {
        this.sessionId = sessionId;
        this.confirmed = true;
      });
      socket.on("keymedic_history", (history) => this.onHistory(history));
      socket.on("bot_uttered", (message) => this.onBotMessage(message || {}));
      socket.on("keymedic_turn", (turn) => {
        this.hideTyping();
        this.setPaused(!!(turn && turn.paused));
      });
      socket.on("keymedic_redacted", (redacted) => {
        // The server removed a secret from the message this page just sent: stop showing it here too.
        const mine = this.unkeyed[this.unkeyed.length - 1];
        if (mine && redacted && typeof redacted.text === "string") {
          mine.querySelector(".km-text").textContent = redacted.text;
        }
      });
      socket.on("session_expired", () => {
        // The server refused the last message because the token lapsed: send it again once reconnected.
        this.resend = this.lastSent;
      });
      socket.on("session_refused", () => {
        this.sessionId = null;
      });
      socket.on("disconnect", (reason) => {
        this.confirmed = false;
        this.setConnection("Reconnecting…");
        // The server hung up on purpose (token expired): socket.io leaves reconnecting to us.
        if (reason === "io server disconnect") this.reconnectSoon(250);
      });
      socket.on("connect_error", (error) => {
        const code = error && error.message;
        if (socket.active) {
          this.setConnection("Reconnecting…");
          return;
        }
        this.setConnection(REFUSALS[code] || "Can't connect to KeyMedic right now.");
        if (RETRYABLE.has(code)) {
          this.reconnectSoon(this.retryDelay);
          this.retryDelay = Math.min(this.retryDelay * 2, 30000);
        }
      });
    }
  }

  function titleCase(id) {
    return String(id || "exchange")
      .split("_")
      .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
      .join(" ");
  }

  function tokenFrom(url) {
    return () =>
      fetch(url, { method: "POST", credentials: "same-origin", cache: "no-store" })
        .then((response) => (response.ok ? response.json() : Promise.reject(new Error("no token"))))
        .then((answer) => answer.token);
  }

  function mount(root, options) {
    return new ChatWidget(root, options);
  }

  window.KeyMedicWidget = { mount: mount };

  function autoMount() {
    for (const root of document.querySelectorAll("[data-keymedic-widget]")) {
      if (root.dataset.keymedicMounted) continue;
      root.dataset.keymedicMounted = "1";
      mount(root, {
        socketUrl: root.dataset.socketUrl,
        socketPath: root.dataset.socketPath,
        getToken: tokenFrom(root.dataset.tokenUrl),
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoMount);
  else autoMount();
})();
