// The Staff inbox and Codes panels (devtools/simulator/devphone/staff.py): polled every 1.5 s.
"use strict";
(() => {
  const inbox = document.getElementById("staff-inbox-list");
  const codes = document.getElementById("codes-list");
  const count = document.getElementById("staff-inbox-count");
  let seen = "";

  function item(parts) {
    const li = document.createElement("li");
    for (const [cls, text] of parts) {
      const el = document.createElement(cls === "body" ? "pre" : "div");
      el.className = cls;
      el.textContent = text;
      li.append(el);
    }
    return li;
  }

  async function refresh() {
    try {
      const [mail, sent] = await Promise.all([
        fetch("/dev/api/staff-inbox").then((r) => r.json()),
        fetch("/dev/api/codes").then((r) => r.json()),
      ]);
      const key = JSON.stringify([mail.emails.length, sent.codes.length]);
      if (key !== seen) {
        seen = key;
        inbox.replaceChildren(...mail.emails.map((e) => item([
          ["subject", e.subject], ["meta", `to ${e.to.join(", ")} · ${e.received_at}`], ["body", e.text],
        ])));
        codes.replaceChildren(...sent.codes.map((c) => item([
          ["subject", `${c.code}`], ["meta", `to ${c.to} by ${c.channel} · ${c.at}`],
        ])));
        count.textContent = mail.emails.length ? `(${mail.emails.length})` : "";
      }
    } catch (err) {
      // The server restarts under `bot dev --reload`; the next poll catches up.
    }
  }
  refresh();
  setInterval(refresh, 1500);
})();
