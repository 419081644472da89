// The Clock panel (devtools/simulator/devphone/schedule.py): the bot's time, moved
// forward on request; reminders and broadcasts started by hand. Uses app.js's
// api(), phones, loadPhone() and loadHeld().
"use strict";

const CLOCK_REFRESH_MS = 30000;
const CLOCK_RETRY_MS = 1000;

function startClock() {
  const now = document.getElementById("clock-now");
  const advance = document.getElementById("clock-advance");
  const broadcast = document.getElementById("broadcast");
  const result = document.getElementById("clock-result");
  const error = document.getElementById("clock-error");

  async function run(action) {
    error.textContent = "";
    try {
      result.textContent = await action();
    } catch (err) {
      error.textContent = String(err.message || err);
    }
  }

  async function refresh() {
    const time = await api("GET", "/dev/api/clock");
    now.textContent = time.local;
    advance.hidden = !time.movable;
    return time;
  }

  function reloadPhones() {
    for (const phone of phones.values()) loadPhone(phone);
  }

  advance.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const moved = await api("POST", "/dev/api/clock", { advance: advance.elements.advance.value.trim() });
      await refresh();
      reloadPhones(); // a hand-off may have run out, held messages gone out
      return `Now ${moved.local}; ${plural(moved.released, "held message")} released.`;
    });
  });

  document.getElementById("run-reminders").addEventListener("click", () => run(async () => {
    await api("POST", "/dev/api/jobs/reminders");
    for (const phone of phones.values()) loadHeld(phone);
    return "Reminders ran.";
  }));

  const names = [...new Set(Object.values(config.templates))].sort();
  fillSelect(broadcast.elements.template, names.map((name) => [name, name]));
  broadcast.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const to = [...phones.values()].filter((p) => p.user !== config.staff_number)
        .map(({ channel, user }) => ({ channel, user }));
      let variables;
      try {
        variables = JSON.parse(broadcast.elements.variables.value || "{}");
      } catch {
        throw new Error('Variables must be JSON, like {"name": "Ana"}');
      }
      const report = await api("POST", "/dev/api/broadcast",
        { template: broadcast.elements.template.value, variables, to });
      for (const phone of phones.values()) loadHeld(phone);
      const held = Object.entries(report.held).map(([until, n]) => `${n} held until ${until}`);
      return `Broadcast ${report.campaign}: ${plural(report.queued, "message")} queued`
        + (held.length ? ` (${held.join(", ")})` : "") + ".";
    });
  });

  // Until the first answer, and every half minute after it (the dev clock runs with the wall
  // clock): a failed fetch while the server is busy must not leave "…" for good.
  async function keepShowing() {
    try {
      await refresh();
      if (error.textContent.startsWith("Clock: ")) error.textContent = "";
      setTimeout(keepShowing, CLOCK_REFRESH_MS);
    } catch (err) {
      error.textContent = `Clock: ${err.message || err}`;
      setTimeout(keepShowing, CLOCK_RETRY_MS);
    }
  }
  keepShowing();
}
