// The dev phone: pretend phones text the bot through the local Twilio simulator.
// One live feed (SSE) serves every phone panel; a panel keeps its messages by
// SID and redraws a message whenever an event about it arrives.
"use strict";

const STATUS_RANK = {
  received: 0, accepted: 0, queued: 0, sending: 1, sent: 2,
  delivered: 3, read: 4, undelivered: 5, failed: 5,
};
const STATUS_VIEW = {
  accepted: ["…", "Queued"], queued: ["…", "Queued"], sending: ["…", "Sending"],
  sent: ["✓", "Sent"], delivered: ["✓✓", "Delivered"], read: ["✓✓", "Read"],
  undelivered: ["✗", "Undelivered"], failed: ["✗", "Failed"],
};
const CHANNEL_NAME = { sms: "SMS", whatsapp: "WhatsApp" };
const SAVED = "devphone.phones";
const E164 = /^\+[1-9][0-9]{6,14}$/;
const HELD_POLL_MS = 2000;

let config = null;
const phones = new Map(); // "sms:+14155550100" -> phone
let order = 0; // arrival order, to sort messages created in the same second

// -- helpers -----------------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : `HTTP ${response.status}`);
  }
  return data;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const phonePath = (p) => `${p.channel}/${encodeURIComponent(p.user)}`;

// -- phones --------------------------------------------------------------------

function addPhone(channel, user) {
  const key = `${channel}:${user}`;
  if (phones.has(key)) {
    $("input[name=body]", phones.get(key).el).focus();
    return;
  }
  const el = $("#phone-template").content.firstElementChild.cloneNode(true);
  const phone = {
    key, channel, user, el, items: new Map(), optedOut: false, botOptedOut: false, failure: null,
    withStaff: null, held: [],
  };
  const name = `${CHANNEL_NAME[channel]} phone ${user}`;
  el.dataset.key = key;
  el.dataset.channel = channel;
  el.setAttribute("aria-label", name);
  $(".pill", el).textContent = CHANNEL_NAME[channel];
  $(".pill", el).classList.add(`pill-${channel}`);
  $(".phone-number", el).textContent = user;
  $(".thread", el).setAttribute("aria-label", `Messages between ${user} and the bot`);
  $(".turns-link", el).href = `/dev/conversations/${channel}/${encodeURIComponent(config.bot)}/${encodeURIComponent(user)}`;
  $(".turns-link", el).setAttribute("aria-label", `Turns of ${name} in the conversation view (new tab)`);
  $(".remove", el).setAttribute("aria-label", `Remove ${name}`);
  $("[data-whatsapp-only]", el).hidden = channel !== "whatsapp";
  fillSelect($("select[name=location]", el), config.locations.map((l) => [l.name, l.label]));
  fillSelect($("select[name=image]", el), config.images.map((i) => [i.name, i.name]));
  fillSelect($("select[name=code]", el), config.failure_codes.map((c) => [c.code, `${c.code} ${c.label}`]));

  $(".composer", el).addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("input[name=body]", el);
    const body = input.value;
    if (!body.trim()) return;
    input.value = "";
    send(phone, { body }).catch(() => { input.value = body; });
  });
  el.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action) act(phone, action);
  });

  $("#phones").append(el);
  followThread(phone);
  phones.set(key, phone);
  savePhones();
  loadPhone(phone);
}

function fillSelect(select, options) {
  select.replaceChildren(...options.map(([value, label]) => h("option", { value }, label)));
}

async function act(phone, action) {
  const el = phone.el;
  try {
    if (action === "remove") {
      el.remove();
      phones.delete(phone.key);
      savePhones();
    } else if (action === "location") {
      const place = config.locations.find((l) => l.name === $("select[name=location]", el).value);
      const { latitude, longitude, label, address } = place;
      await send(phone, { location: { latitude, longitude, label, address } });
    } else if (action === "image") {
      await send(phone, { image: $("select[name=image]", el).value });
    } else if (action === "fail") {
      const code = Number($("select[name=code]", el).value);
      phone.failure = await api("PUT", `/dev/api/failures/${phonePath(phone)}`, { error_code: code });
      renderHead(phone);
    } else if (action === "unfail") {
      await api("DELETE", `/dev/api/failures/${phonePath(phone)}`);
      phone.failure = null;
      renderHead(phone);
    } else if (action === "staff-phone") {
      addPhone("sms", config.staff_number); // the hand-off notices staff got by SMS
    }
  } catch (error) {
    showError(phone, error);
  }
}

async function send(phone, fields) {
  showError(phone, null);
  try {
    await api("POST", "/dev/api/send", { channel: phone.channel, user: phone.user, ...fields });
  } catch (error) {
    showError(phone, error);
    throw error;
  }
}

function showError(phone, error) {
  $(":scope > .error", phone.el).textContent = error ? String(error.message || error) : "";
}

function savePhones() {
  const saved = [...phones.values()].map(({ channel, user }) => ({ channel, user }));
  localStorage.setItem(SAVED, JSON.stringify(saved));
}

function savedPhones() {
  try {
    const saved = JSON.parse(localStorage.getItem(SAVED));
    if (Array.isArray(saved) && saved.length) return saved;
  } catch { /* fall through to the defaults */ }
  return [
    { channel: "sms", user: config.presets[0] },
    { channel: "whatsapp", user: config.presets[1] },
  ];
}

// -- state ---------------------------------------------------------------------

async function loadPhone(phone) {
  let snapshot;
  try {
    snapshot = await api("GET", `/dev/api/phones/${phonePath(phone)}`);
  } catch (error) {
    showError(phone, error);
    return;
  }
  phone.items.clear();
  for (const message of snapshot.messages) {
    const item = upsertMessage(phone, message);
    item.callbacks = snapshot.callbacks[message.sid] || [];
    item.webhook = snapshot.webhooks[message.sid] || null;
  }
  for (const rejection of snapshot.rejections) addRejection(phone, rejection);
  setFlags(phone, snapshot);
  renderThread(phone);
  loadHeld(phone);
}

function setFlags(phone, snapshot) {
  phone.optedOut = snapshot.opted_out;
  phone.botOptedOut = snapshot.bot_opted_out;
  phone.failure = snapshot.failure;
  phone.withStaff = snapshot.with_staff;
  renderHead(phone);
}

// Messages the bot holds for quiet hours reach Twilio only at their release
// time, so no simulator event tells of them: the page asks (on load, and often).
async function loadHeld(phone) {
  try {
    phone.held = (await api("GET", `/dev/api/held/${phonePath(phone)}`)).held;
  } catch {
    return; // the server restarts under --reload; the next poll catches up
  }
  renderHeld(phone);
}

function renderHeld(phone) {
  const list = $(".held-list", phone.el);
  list.hidden = phone.held.length === 0;
  list.replaceChildren(...phone.held.map((m) => h("li", { class: "msg msg-held", "data-status": "held" },
    h("div", { class: "bubble" },
      h("p", { class: "from" }, `Held for quiet hours (${m.purpose})`),
      h("p", { class: "body" }, m.preview)),
    h("p", { class: "meta" }, h("time", { datetime: m.release_at }, `held ${m.until}`)))));
  keepAtBottom(phone);
}

function upsertMessage(phone, message) {
  let item = phone.items.get(message.sid);
  if (!item) {
    item = { id: message.sid, t: Date.parse(message.date_created) || Date.now(), order: order++, callbacks: [] };
    phone.items.set(message.sid, item);
  } else if (STATUS_RANK[message.status] < STATUS_RANK[item.message.status]) {
    return item; // a late event: keep the newer status
  }
  item.message = message;
  return item;
}

function addRejection(phone, rejection) {
  const id = `rejected-${rejection.at}-${rejection.code}`;
  const item = { id, t: Math.floor(rejection.at) * 1000, order: order++, rejection };
  phone.items.set(id, item);
  return item;
}

function onEvent(event) {
  const data = event.data || {};
  if (event.kind === "api.rejected") {
    const phone = phones.get(`${data.channel}:${data.user}`);
    if (phone) drawItem(phone, addRejection(phone, data));
    return;
  }
  if (event.kind === "optout.changed") {
    const phone = phones.get(`${data.channel}:${data.user}`);
    if (phone && data.bot === config.bot) {
      phone.optedOut = data.opted_out;
      renderHead(phone);
    }
    return;
  }
  const message = event.message;
  const phone = message && phones.get(`${message.channel}:${message.user}`);
  if (!phone) return;
  const item = upsertMessage(phone, message);
  if (event.kind === "callback.sent") {
    item.callbacks = [...item.callbacks.filter((c) => c.status !== data.status), data];
  } else if (event.kind === "inbound.sent") {
    item.webhook = data;
    // The bot's own opt-out (e.g. STOP on WhatsApp) shows only in its store.
    api("GET", `/dev/api/phones/${phonePath(phone)}`).then((s) => setFlags(phone, s), () => {});
  }
  drawItem(phone, item);
}

// -- rendering -------------------------------------------------------------------

function renderHead(phone) {
  const el = phone.el;
  const optedOut = phone.optedOut || phone.botOptedOut;
  $(".badge-optout", el).hidden = !optedOut;
  const note = $(".optout-note", el);
  note.hidden = !optedOut;
  note.textContent = phone.optedOut
    ? "You opted out: Twilio blocks the bot's messages to you (error 21610) until you send START."
    : "You opted out: the bot sends you nothing until you send START.";
  const staff = phone.withStaff;
  $(".badge-staff", el).hidden = !staff;
  $(".staff-note", el).hidden = !staff;
  if (staff) {
    $(".staff-text", el).textContent = `With staff until ${clock(Date.parse(staff.until))}: the bot passes `
      + "your messages to staff and stays quiet (one short note at most). It answers again after that, "
      + "or at once if you text \"bot\".";
  }
  const failure = phone.failure;
  $(".failure-state", el).textContent = failure ? `· failing with ${failure.error_code}` : "";
  el.classList.toggle("is-failing", Boolean(failure));
}

// A thread follows the newest message while its reader is at the bottom. Whether
// they are is decided when *they* scroll, not when a message arrives: a picture
// grows the thread after it was drawn (and scrolled to), which must not count as
// the reader scrolling away.
const NEAR_BOTTOM = 40; // px

function followThread(phone) {
  const thread = $(".thread", phone.el);
  phone.following = true;
  thread.addEventListener("scroll", () => {
    phone.following = thread.scrollHeight - thread.scrollTop - thread.clientHeight < NEAR_BOTTOM;
  });
  // "load" does not bubble: listen while it travels down (capture) for every image in the thread.
  thread.addEventListener("load", () => keepAtBottom(phone), true);
}

function keepAtBottom(phone) {
  if (!phone.following) return;
  const thread = $(".thread", phone.el);
  thread.scrollTop = thread.scrollHeight;
}

function renderThread(phone) {
  const items = [...phone.items.values()].sort((a, b) => a.t - b.t || a.order - b.order);
  const thread = $(".thread", phone.el);
  thread.replaceChildren(...items.map((item) => (item.el = renderItem(item))));
  phone.following = true;
  keepAtBottom(phone);
}

function drawItem(phone, item) {
  const thread = $(".thread", phone.el);
  const el = renderItem(item);
  if (item.el && item.el.isConnected) {
    // A status update redraws the message: a list the user opened stays open.
    if (item.el.querySelector("details.list-picker[open]")) {
      const picker = el.querySelector("details.list-picker");
      if (picker) picker.open = true;
    }
    item.el.replaceWith(el);
  } else thread.append(el);
  item.el = el;
  keepAtBottom(phone);
}

function renderItem(item) {
  return item.rejection ? renderRejection(item) : renderMessage(item);
}

// Quick replies are a row of buttons; a list picker (more than three options)
// is a button that opens its items, one per line, as WhatsApp shows it.
function renderChoices(m) {
  // The simulator has filled in the template's {{n}} variables already.
  const choices = m.buttons.map((button) => h("button", {
    type: "button",
    onclick: (event) => {
      const phone = phones.get(event.target.closest(".phone").dataset.key);
      send(phone, { button, replied_to: m.sid }).catch(() => {});
    },
  }, button.title));
  if (m.list_button == null) {
    return h("div", { class: "buttons", role: "group", "aria-label": "Quick replies" }, choices);
  }
  return h("details", { class: "list-picker" },
    h("summary", {}, m.list_button),
    h("div", { class: "list-items", role: "group", "aria-label": m.list_button }, choices));
}

function renderMessage(item) {
  const m = item.message;
  const who = m.origin; // "user", "bot" or "twilio"
  const bubble = h("div", { class: "bubble" },
    who === "twilio" && h("p", { class: "from" }, "Twilio auto-reply"),
    who === "user" && m.buttons.length > 0 && h("p", { class: "from" },
      m.list_button != null ? "Picked from a list" : "Pressed a quick reply"),
    m.content_sid && renderTemplate(m),
    m.body && h("p", { class: "body" }, m.channel === "whatsapp" ? whatsappFormatted(m.body) : m.body),
    m.media.map(renderMedia),
    m.location && h("p", { class: "location" },
      h("strong", {}, "Location: "), m.location.label || "", ` (${m.location.latitude}, ${m.location.longitude})`,
      m.location.address && h("span", { class: "muted" }, ` ${m.location.address}`)),
    who === "bot" && m.buttons.length > 0 && renderChoices(m),
  );
  const meta = [h("time", { datetime: new Date(item.t).toISOString() }, clock(item.t))];
  if (who !== "user" && m.channel === "sms" && m.segments) {
    const s = m.segments;
    meta.push(h("span", { class: "segments" }, `${s.encoding} · ${plural(s.segments, "segment")} · ${s.characters} chars`));
  }
  if (who !== "user") meta.push(renderStatus(m.status));
  if (who === "user" && item.webhook) meta.push(renderWebhook(item.webhook));
  return h("li", { class: `msg msg-${who}`, "data-sid": m.sid, "data-status": m.status },
    bubble,
    h("p", { class: "meta" }, meta.flatMap((part, i) => (i ? [" · ", part] : [part]))),
    m.error_code && h("p", { class: "msg-error" }, `Error ${m.error_code}: ${m.error_message || ""}`),
    item.callbacks.length > 0 && h("p", { class: "callbacks" }, "Status callbacks: ",
      item.callbacks.map((c) => `${c.status} → ${c.status_code ?? "no answer"}`).join(", "),
      lastRecorded(item) && ` · bot recorded: ${lastRecorded(item)}`),
  );
}

// WhatsApp shows *bold*, _italic_, ~strike~ and ```code```; SMS shows text as is.
const WA_STYLE = { "*": "strong", "_": "em", "~": "s", "```": "code" };
function whatsappFormatted(text) {
  return text.split(/(```[^`]+```|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~)/).map((part, i) => {
    if (i % 2 === 0) return part;
    const mark = part.startsWith("```") ? "```" : part[0];
    return h(WA_STYLE[mark], {}, part.slice(mark.length, -mark.length));
  });
}

function renderTemplate(m) {
  const name = config.templates[m.content_sid] || m.content_sid;
  const variables = Object.entries(m.content_variables || {});
  const title = ["Template ", h("strong", {}, name)];
  if (!variables.length) return h("p", { class: "template" }, title);
  return h("details", { class: "template" },
    h("summary", {}, title, ` · ${plural(variables.length, "variable")}`),
    h("dl", {}, variables.map(([k, v]) => [h("dt", {}, `{{${k}}}`), h("dd", {}, v)])));
}

function renderMedia(media) {
  if (media.content_type.startsWith("image/")) {
    return h("img", { class: "media", src: media.url, alt: "Image attachment", loading: "lazy" });
  }
  return h("p", {}, h("a", { href: media.url }, `Attachment (${media.content_type})`));
}

// The bot's own delivery record, as of the latest callback it answered.
const lastRecorded = (item) => item.callbacks.map((c) => c.recorded).filter(Boolean).pop();

function renderStatus(status) {
  const [symbol, word] = STATUS_VIEW[status] || ["", status];
  return h("span", { class: `status status-${status}` }, h("span", { "aria-hidden": "true" }, symbol), ` ${word}`);
}

function renderWebhook(webhook) {
  if (webhook.error_code) {
    return h("span", { class: "bad" }, `Webhook failed: ${webhook.error_code} ${webhook.error || ""}`);
  }
  return h("span", { class: "webhook" }, `bot answered ${webhook.status_code} in ${webhook.elapsed_ms} ms`);
}

function renderRejection(item) {
  const r = item.rejection;
  const template = r.content_sid && (config.templates[r.content_sid] || r.content_sid);
  return h("li", { class: "msg msg-rejected", "data-status": "rejected" },
    h("div", { class: "bubble" },
      h("p", { class: "from" }, "Blocked by Twilio: the bot's message was refused"),
      template && h("p", {}, "Template ", h("strong", {}, template)),
      r.body && h("p", { class: "body" }, r.body)),
    h("p", { class: "meta" }, h("time", {}, clock(item.t)), " · ", renderStatus("failed")),
    h("p", { class: "msg-error" }, `Error ${r.code}: ${r.error}`));
}

// -- live feed ---------------------------------------------------------------------

function setLive(state, text) {
  const live = $("#live");
  live.dataset.state = state;
  live.textContent = text;
}

function connect() {
  const source = new EventSource("/dev/api/events");
  source.addEventListener("ready", () => {
    setLive("live", "Live");
    for (const phone of phones.values()) loadPhone(phone); // catch up on what was missed
  });
  source.onmessage = (event) => onEvent(JSON.parse(event.data));
  source.onerror = () => setLive("down", "Reconnecting…");
}

// -- start ---------------------------------------------------------------------------

async function start() {
  config = await api("GET", "/dev/api/config");
  $("#bot-number").textContent = config.bot;
  const form = $("#add-phone");
  const preset = $("#preset");
  fillSelect(preset, [...config.presets.map((n) => [n, n]), ["custom", "Custom…"]]);
  preset.addEventListener("change", () => { $("#custom-field").hidden = preset.value !== "custom"; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const user = preset.value === "custom" ? form.elements.custom.value.trim() : preset.value;
    const error = $("#add-error");
    error.textContent = E164.test(user) ? "" : "Enter the number in E.164 form, like +14155550123.";
    if (!error.textContent) addPhone(form.elements.channel.value, user);
  });
  for (const { channel, user } of savedPhones()) addPhone(channel, user);
  connect();
  startClock(); // static/clock.js
  setInterval(() => { for (const phone of phones.values()) loadHeld(phone); }, HELD_POLL_MS);
}

start().catch((error) => setLive("down", `Could not start: ${error.message}`));
