"""The console table, the target check and the markdown report of a bench run."""

from __future__ import annotations

from typing import Any


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)):
        return f"{value:{spec}}{suffix}"
    return str(value)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 7 with this run's figure and whether it is met."""
    s = results["sections"]
    rows: list[dict[str, Any]] = []
    top = max((int(k) for k in _get(s, "load", "runs") or {}), default=None)
    if top is not None:
        ratio = _get(s, "load", "ratios", str(top), "project_vs_tutorial")
        p99 = _get(s, "load", "runs", str(top), "project", "p99_ms")
        rows.append({"target": f"project req/s >= 1.0x tutorial at c={top}", "value": _fmt(ratio, ".2f", "x"),
                     "met": ratio is not None and ratio >= 1.0})
        rows.append({"target": f"project p99 <= 50 ms at c={top}", "value": _fmt(p99, ".1f", " ms"),
                     "met": p99 is not None and p99 <= 50})
        dups = _get(s, "load", "runs", str(top), "project", "duplicates")
        rows.append({"target": "no duplicate MessageSid in the load (server-side count)",
                     "value": _fmt(dups, "d"), "met": dups == 0})
    trips = _get(s, "redis", "ordinary_round_trips_max_mean")
    if trips is not None:
        rows.append({"target": "<= 3 Redis round trips per ordinary message (worst kind, mean)",
                     "value": _fmt(trips, ".2f"), "met": trips <= 3})
    mem = _get(s, "memory", "checkpoints", "50")
    if mem:
        h40 = _get(s, "memory", "history_limit_40_at_50_turns")
        if h40 is not None:
            rest = h40["at_rest_bytes_median"]
            rows.append({"target": "<= 4 KB Redis per conversation, 20-turn history (HISTORY_LIMIT=40), 50 turns, "
                                   "all keys but answers cached for retries",
                         "value": f"{rest:.0f} B", "met": rest <= 4096})
        rest = mem["at_rest_bytes_median"]
        rows.append({"target": "  same with the default HISTORY_LIMIT=20",
                     "value": f"{rest:.0f} B", "met": rest <= 4096})
        total = mem["memory_usage_bytes_median"]
        rows.append({"target": "  (live: plus the 50 answers still cached for retries, 15 min)",
                     "value": f"{total:.0f} B", "met": None})
    slow = _get(s, "slow", "default_timeout")
    if isinstance(slow, dict) and slow.get("status") == "ok":
        budget = slow["reply_budget_seconds"]
        rows.append({"target": f"slow model: webhook p99 <= REPLY_BUDGET_SECONDS ({budget:g} s)",
                     "value": f"{slow['webhook_p99_s']:.2f} s ({slow['webhook_p99_over_budget_ms']:+.0f} ms)",
                     "met": slow["webhook_within_budget"]})
    steps = _get(s, "replay", "steps_per_second")
    if steps is not None:
        want = _get(s, "replay", "target_steps_per_second") or 500
        rows.append({"target": f"replay >= {want} steps/s (Replay issue)", "value": _fmt(steps, ".0f"),
                     "met": steps >= want})
    return rows


def table(results: dict[str, Any]) -> str:
    s = results["sections"]
    lines: list[str] = []
    runs = _get(s, "load", "runs")
    if runs:
        lines.append(f"{'load':10} {'c':>3} {'server':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                     f"{'errors':>7} {'cpu ms/req':>10} {'vs bare':>8} {'vs tut.':>8}")
        for level, by_server in runs.items():
            ratios = _get(s, "load", "ratios", level) or {}
            for name, row in by_server.items():
                errors = sum(row["errors"].values())
                vs_bare = ratios.get("project_vs_bare") if name == "project" else None
                vs_tut = ratios.get("project_vs_tutorial") if name == "project" else None
                lines.append(f"{'':10} {level:>3} {name:9} {row['rps']:8.0f} {row['p50_ms']:8.1f} "
                             f"{row['p99_ms']:8.1f} {errors:7d} {row['server_cpu_ms_per_req']:10.2f} "
                             f"{_fmt(vs_bare, '.2f', 'x'):>8} {_fmt(vs_tut, '.2f', 'x'):>8}")
    elif "load" in s:
        lines.append(f"load: {s['load'].get('status')}")
    kinds = _get(s, "redis", "kinds")
    if kinds:
        lines.append("")
        lines.append(f"{'redis':10} {'message kind':34} {'round trips':>11} {'max':>4} {'commands':>9}")
        for name, row in kinds.items():
            lines.append(f"{'':10} {name:34} {row['round_trips_mean']:11.2f} {row['store_round_trips_max']:4d} "
                         f"{row['all_commands_per_msg']:9.1f}")
    checkpoints = _get(s, "memory", "checkpoints")
    if checkpoints:
        lines.append("")
        lines.append(f"{'memory':10} {'turns':>5} {'live B':>7} {'at rest B':>9} {'state B':>8} {'seen B':>7} "
                     f"{'answers B':>9} {'GB per 1M':>10}")
        for row in checkpoints.values():
            k = row["memory_usage_by_kind_mean"]
            lines.append(f"{'':10} {row['turns']:5d} {row['memory_usage_bytes_median']:7.0f} "
                         f"{row['at_rest_bytes_median']:9.0f} {k.get('state (JSON)', 0):8d} "
                         f"{k.get('seen MessageSids', 0):7d} {k.get('dedupe answers (msg:*)', 0):9d} "
                         f"{row['projected_gb_per_million']:10.2f}")
    slow = s.get("slow")
    if slow:
        lines.append("")
        for label, key in (("default LLM timeout", "default_timeout"), ("timeout > model", "timeout_above_model")):
            row = slow.get(key)
            if isinstance(row, dict) and row.get("status") == "ok":
                lines.append(f"{'slow':10} {label:20} webhook p99 {row['webhook_p99_s']:.2f} s "
                             f"(budget {row['reply_budget_seconds']:g} s); REST reply median "
                             f"{_fmt(row['rest_reply_median_s'], '.2f', ' s')} ({row['rest_replies']}/{row['users']})")
        if "status" in slow:
            lines.append(f"{'slow':10} {slow['status']}")
    cls = s.get("classifier")
    if cls:
        lines.append("")
        if cls.get("status") == "ok":
            lines.append(f"{'classifier':10} accuracy {cls['accuracy']:.1%}, "
                         f"out-of-scope recall {cls['oos_recall']:.1%}; "
                         f"predict median {cls['predict_median_ms']:.3f} ms p99 {cls['predict_p99_ms']:.3f} ms; "
                         f"with slots median {cls['classify_median_ms']:.3f} ms p99 {cls['classify_p99_ms']:.3f} ms")
        else:
            lines.append(f"{'classifier':10} {cls.get('status')}")
    rep = s.get("replay")
    if rep:
        if rep.get("status") == "ok":
            lines.append(f"{'replay':10} {rep.get('steps_per_second')} steps/s, "
                         f"{rep.get('steps_per_cpu_second')} per CPU second "
                         f"(webhook median {rep.get('webhook_ms_median')} ms)")
        else:
            lines.append(f"{'replay':10} {rep.get('status')}")
    if results.get("targets"):
        lines.append("")
        for row in results["targets"]:
            verdict = "info" if row["met"] is None else ("MET " if row["met"] else "MISS")
            lines.append(f"{'target':10} {verdict} {row['target']}: {row['value']}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["sections"]
    out: list[str] = [
        "# Benchmark report (bench/run)",
        "",
        f"Machine: {m['cpu_model']}, {m['nproc']} cores (shared, noisy), Python {m['python']}, "
        f"Redis {m.get('redis', '?')}, {m.get('wrk') or 'no wrk'}; {m['date_utc']}; "
        f"commit {m.get('git_commit')} (+{m.get('git_dirty_files')} uncommitted files); "
        f"load average {m.get('load_average_at_start')} at start, {m.get('load_average_at_end')} at end. "
        f"Whole run: {results.get('total_seconds')} s.",
        "",
        "Numbers from one run on a shared machine: compare the ratios and medians within this "
        "report, not the absolute figures across machines. What each number means: bench/README.md.",
        "",
        "## Targets",
        "",
        "| target | this run | |",
        "| --- | --- | --- |",
    ]
    for row in results.get("targets", []):
        verdict = "(information)" if row["met"] is None else ("met" if row["met"] else "**not met**")
        out.append(f"| {row['target'].strip()} | {row['value']} | {verdict} |")

    load = s.get("load", {})
    out += ["", "## 1. Webhook load (wrk, one uvicorn worker each)", ""]
    if "runs" in load:
        cfg, traffic = load["config"], load["traffic"]
        rounds = cfg.get("rounds", 1)
        out.append(f"Per level, {rounds} interleaved rounds (bare, tutorial, project, bare, ...) of "
                   f"{cfg['duration_s']:g} s measured, after {cfg['warmup_s']:g} s warm-up per server; each row is "
                   f"the server's median round by req/s (every round's req/s in the JSON); errors and duplicates "
                   f"summed over the rounds; wrk {cfg['wrk_threads']} thread(s). Traffic: {traffic['messages']} "
                   f"pre-signed requests from "
                   f"{traffic['distinct_users']} users, {traffic['whatsapp_share']:.0%} WhatsApp; kinds "
                   + ", ".join(f"{k} {v:.0%}" for k, v in traffic["kinds"].items())
                   + f". The project used {load['project_requests_used']} of them, each once.")
        out += ["", "| c | server | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU ms/req | "
                "project req/s ÷ this |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for level, by_server in load["runs"].items():
            for name, row in by_server.items():
                ratio = ""
                if name != "project" and "project" in by_server:
                    ratio = f"{by_server['project']['rps'] / row['rps']:.2f}x"
                out.append(f"| {level} | {name} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} | "
                           f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} | {sum(row['errors'].values())} | "
                           f"{row['server_cpu_ms_per_req']:.3f} | {ratio} |")
        out += ["", "Project server details per level:", "",
                "| c | turns | duplicates | HTTP non-200 | errors | EVALSHA/turn | Redis commands/turn | "
                "Redis CPU ms/req | simulator CPU ms/req |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for level, by_server in load["runs"].items():
            p = by_server.get("project")
            if p:
                out.append(f"| {level} | {p['server']['turns']:.0f} | {p['duplicates']} | "
                           f"{p['server']['http_other']:.0f} | {p['server']['errors']:.0f} | "
                           f"{p['redis_evalsha_per_turn']:.2f} | {p['redis_commands_per_turn']:.1f} | "
                           f"{p['redis_cpu_ms_per_req']:.3f} | {p.get('simulator_cpu_ms_per_req', 0):.3f} |")
        for level, by_server in load["runs"].items():
            prof = by_server.get("project", {}).get("profile")
            if prof and "by_stage" in prof:
                out += ["", f"py-spy profile of the project at c={level} ({prof['samples']} samples, "
                        f"`{prof.get('file')}`), share of samples by stage:", ""]
                out += [f"- {share:.1%} {stage}" for stage, share in list(prof["by_stage"].items())[:14]]
    else:
        out.append(str(load.get("status", "not run")))

    red = s.get("redis", {})
    out += ["", "## 2. Redis cost per inbound message (in-process app, one message at a time)", ""]
    if "kinds" in red:
        out += [f"{red['k_per_kind']} messages per kind. Round trips: packets the store's client sent "
                "(EVALSHA = 1) plus any other client's commands. Commands: every command Redis ran, "
                "inside scripts included (INFO commandstats delta).", "",
                "| message kind | round trips (mean) | max | client commands | commands inside scripts | "
                "all commands | median ms |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, row in red["kinds"].items():
            client = ", ".join(f"{k} {v:g}" for k, v in row["client_commands_per_msg"].items())
            inside = sum(row["commands_in_scripts_per_msg"].values())
            out.append(f"| {name} | {row['round_trips_mean']:.2f} | {row['store_round_trips_max']} | {client} | "
                       f"{inside:.1f} | {row['all_commands_per_msg']:.1f} | {row['latency_median_ms']:.2f} |")
    else:
        out.append(str(red.get("status", "not run")))

    mem = s.get("memory", {})
    out += ["", "## 3. Redis memory per conversation", ""]
    if "checkpoints" in mem:
        out += [f"{mem['conversations']} conversations (SMS and WhatsApp), ordinary messages, "
                f"HISTORY_LIMIT={mem['history_limit']}, default TTLs. Bytes: MEMORY USAGE of every key of a "
                "conversation (median), and by kind (mean); used_memory growth per conversation as a "
                "cross-check (allocator noise at these counts). *Live*: right after the last message, so "
                "every answer is still cached for retries (15 min). *At rest*: without them, what a "
                "conversation costs between bursts; answers cost messages/s x 900 s x their size instead.", "",
                "| turns | keys | live bytes / conversation | at rest | state | seen MessageSids | "
                "cached answers | bytes per answer | state JSON chars | used_memory growth | "
                "GB per million at rest | GB per million, live |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in mem["checkpoints"].values():
            k = row["memory_usage_by_kind_mean"]
            out.append(f"| {row['turns']} | {row['keys_per_conversation']:g} | "
                       f"{row['memory_usage_bytes_median']:.0f} | {row['at_rest_bytes_median']:.0f} | "
                       f"{k.get('state (JSON)', 0)} | {k.get('seen MessageSids', 0)} | "
                       f"{k.get('dedupe answers (msg:*)', 0)} | {row['answer_bytes_mean']} | "
                       f"{row['state_json_chars_median']:g} | {row['used_memory_growth_per_conversation']} | "
                       f"{row['projected_gb_per_million']} | {row['live_projected_gb_per_million']} |")
        h40 = mem.get("history_limit_40_at_50_turns")
        if h40:
            k = h40["memory_usage_by_kind_mean"]
            out += ["", f"With HISTORY_LIMIT=40 (the last 20 user+bot turns) after 50 turns: state "
                    f"{k.get('state (JSON)', 0)} B ({h40['state_json_chars_median']:g} characters stored), "
                    f"{h40['at_rest_bytes_median']:.0f} B per conversation at rest, "
                    f"{h40['memory_usage_bytes_median']:.0f} B live."]
    else:
        out.append(str(mem.get("status", "not run")))

    slow = s.get("slow", {})
    out += ["", "## 4. Slow model (20 s) vs the reply budget", ""]
    rows = [(label, slow.get(key)) for label, key in
            (("default LLM_TIMEOUT_SECONDS", "default_timeout"),
             ("LLM timeout above the model", "timeout_above_model"))]
    if any(isinstance(r, dict) and r.get("status") == "ok" for _, r in rows):
        out += ["| configuration | users | LLM timeout s | webhook median s | webhook p99 s | budget s | "
                "empty TwiML | REST replies | REST reply median s | REST reply p99 s |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, r in rows:
            if isinstance(r, dict) and r.get("status") == "ok":
                out.append(f"| {label} | {r['users']} | {r['llm_timeout_seconds']:g} | {r['webhook_median_s']:.2f} | "
                           f"{r['webhook_p99_s']:.2f} | {r['reply_budget_seconds']:g} | {r['webhook_empty_answers']} | "
                           f"{r['rest_replies']} | {_fmt(r['rest_reply_median_s'])} | {_fmt(r['rest_reply_p99_s'])} |")
            elif isinstance(r, dict):
                out.append(f"| {label} | {r.get('status')} |||||||||")
    else:
        status = slow.get("status") or next((r.get("status") for _, r in rows if isinstance(r, dict)), "not run")
        out.append(str(status))

    cls = s.get("classifier", {})
    out += ["", "## 5. Classifier (bench/classifier.py, held-out set)", ""]
    if cls.get("status") == "ok":
        out += [f"{cls['n']} held-out utterances ({cls['oos_n']} out of scope): accuracy {cls['accuracy']:.1%}, "
                f"out-of-scope recall {cls['oos_recall']:.1%} (precision {cls['oos_precision']:.1%}); "
                f"rules + classifier median {cls['predict_median_ms']:.3f} ms, p99 {cls['predict_p99_ms']:.3f} ms "
                f"at first sight ({cls.get('predict_cached_median_ms', 0):.3f} ms median for a text seen before); "
                f"with slot extraction median {cls['classify_median_ms']:.3f} ms, p99 {cls['classify_p99_ms']:.3f} ms."]
    else:
        out.append(str(cls.get("status", "not run")))

    rep = s.get("replay", {})
    out += ["", "## 6. Replay (bench/replay.py)", ""]
    if rep.get("status") == "ok":
        out.append(f"{rep.get('steps_per_second')} steps/s (target {rep.get('target_steps_per_second')}), "
                   f"{rep.get('steps_per_cpu_second')} steps per CPU second of the replaying process; "
                   f"{rep.get('conversations')} conversations, {rep.get('steps_per_round')} steps per round, "
                   f"{rep.get('rounds')} rounds; webhook median {rep.get('webhook_ms_median')} ms, "
                   f"p95 {rep.get('webhook_ms_p95')} ms.")
    else:
        out.append(str(rep.get("status", "not run")))
    return "\n".join(out) + "\n"
