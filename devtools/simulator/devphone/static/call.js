// The dev phone's Call mode: call the bot through the local Twilio, speak by
// typing (sent as SpeechResult), press keys (Digits), hear each <Say> as a
// bubble and, if asked, through the browser's speech synthesis.
"use strict";

(() => {
  const panel = document.getElementById("call");
  const thread = panel.querySelector(".call-thread");
  const state = document.getElementById("call-state");
  const error = document.getElementById("call-error");
  const sayForm = document.getElementById("call-say");
  const sayInput = sayForm.querySelector("input");
  const keys = [...panel.querySelectorAll(".keypad button")];
  const hangup = document.getElementById("call-hangup");
  const silence = document.getElementById("call-silence");
  const speak = document.getElementById("call-speak");
  let sid = null;

  function bubble(who, text) {
    const item = document.createElement("li");
    item.className = who === "bot" ? "msg msg-bot" : "msg msg-user";
    item.textContent = text;
    thread.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function inCall(active) {
    for (const control of [sayInput, sayForm.querySelector("button"), hangup, silence, ...keys]) {
      control.disabled = !active;
    }
  }

  function show(answer) {
    for (const line of answer.said) {
      bubble("bot", line);
      if (speak.checked && "speechSynthesis" in window) {
        window.speechSynthesis.speak(new SpeechSynthesisUtterance(line));
      }
    }
    if (answer.dialed) {
      bubble("note", `Dialled ${answer.dialed}: ${answer.dial_status}`);
    }
    if (answer.ended) {
      sid = null;
      inCall(false);
      state.textContent = `Call ended (${answer.status}, ${answer.duration ?? 0} s)`;
    } else {
      state.textContent = answer.listening ? "In call: the bot is listening" : "In call";
    }
  }

  async function post(path, body) {
    error.textContent = "";
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = typeof data.detail === "string" ? data.detail : `Error ${response.status}`;
      return null;
    }
    return data;
  }

  document.getElementById("call-start").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    thread.replaceChildren();
    state.textContent = "Calling…";
    const answer = await post("/dev/api/calls", { user: form.get("user"), dial_status: form.get("dial_status") });
    if (answer) {
      sid = answer.sid;
      inCall(true);
      show(answer);
    } else {
      state.textContent = "No call";
    }
  });

  sayForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = sayInput.value.trim();
    if (!sid || !text) return;
    sayInput.value = "";
    bubble("user", text);
    const answer = await post(`/dev/api/calls/${sid}/say`, { text });
    if (answer) show(answer);
  });

  for (const key of keys) {
    key.addEventListener("click", async () => {
      if (!sid) return;
      bubble("user", `Pressed ${key.textContent}`);
      const answer = await post(`/dev/api/calls/${sid}/press`, { digits: key.textContent });
      if (answer) show(answer);
    });
  }

  silence.addEventListener("click", async () => {
    if (!sid) return;
    const answer = await post(`/dev/api/calls/${sid}/silence`);
    if (answer) show(answer);
  });

  hangup.addEventListener("click", async () => {
    if (!sid) return;
    const answer = await post(`/dev/api/calls/${sid}/hangup`);
    if (answer) show(answer);
  });
})();
