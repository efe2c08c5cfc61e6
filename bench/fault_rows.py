"""Markdown rows of the fault campaign's table for the exporter-side, aggregator-side and inference-engine
hostile-input faults.

One function per fault, each taking that fault's result dict and returning
(fault, injected, what the system did, totals after recovery, equal to fault-free?).
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str]

def yes_no(equal: bool) -> str:
    return "yes" if equal else "no"


def mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def hung_nvml(r: dict[str, Any]) -> Row:
    did, totals, equal = [], [], []
    for case, h in r.items():
        if not isinstance(h, dict):
            continue
        w = h["while_hung"]
        did.append(f"{case} hang: `wattfleet_collector_up{{collector=\"nvml\"}}` 0 after {ms(h['down_after_s'])} "
                   f"(deadline {h['collector_timeout_s']:g} s), `wattfleet_gpu_up` {w['gpu_up']}, "
                   f"{int(w['timeout_errors'])} `errors_total{{reason=\"timeout\"}}`; rapl up {w['collector_up_rapl']}"
                   f" and +{w['cpu_joules_added']:.0f} J meanwhile; `/-/ready` {w['ready_status']}")
        totals.append(f"{case} hang: `energy_recovered_joules_total` {h['recovered_joules']:.1f} J of about "
                      f"{h['hang_joules']:.0f} J hung; exported {h['exported_joules']:.1f} J vs truth "
                      f"{h['true_joules']:.1f} J (gap {h['gap_joules']:.3f} J)")
        equal.append(f"{case}: {yes_no(abs(h['gap_joules']) < 0.01)}")
    why = ("" if all(e.endswith("yes") for e in equal) else
           ". FINDING: the late answer is stamped with the time its sample started, so a hang longer than "
           "max_watts x interval / board power (here 5000 W x 0.1 s / 300 W = 1.7 s) looks like > 5000 W and is "
           "rejected as implausible: the hang's energy is lost, not recovered")
    return ("Hung NVML call", "`FakeGpu.hang()` on 1 of 2 boards at 300 W, then `unhang()`; sampler interval 0.1 s",
            "<br>".join(did), "<br>".join(totals), "; ".join(equal) + why)


def rapl_implausible(r: dict[str, Any]) -> Row:
    totals, equal = [], []
    for case in ("counter_mid_range", "counter_near_zero"):
        c = r[case]
        totals.append(f"{case.replace('_', ' ')} ({c['start_uj']} uJ at start): faulted - clean = "
                      f"{c['faulted_minus_clean_joules']:+.0f} J ({c['faulted_minus_clean_seconds_at_120w']:+.0f} s "
                      f"at 120 W), {int(c['faulted']['implausible_errors'])} `errors_total"
                      f"{{reason=\"implausible_reading\"}}`")
        equal.append(c["totals_equal"])
    return ("RAPL counter jump and negative reading",
            f"one `energy_uj` read +1e15 uJ (then back), later one read -5; {r['steps']} samples at 1 s, 120 W",
            "both bad readings rejected and counted, not summed; the baseline stays at the last good reading "
            "until a next reading confirms a move, so the return from the jump is measured against it (never "
            "read as a wrap or a reset, also near zero after boot or a wrap)",
            "<br>".join(totals),
            "no: mid-range counter: the 2 intervals around the jump are lost; counter near 0: the return from "
            "the jump is summed as a reset, an over-count (FINDING for the exporter)" if not all(equal) else "yes")


def tls_idle(r: dict[str, Any]) -> Row:
    return ("Silent TLS client and idle connections",
            f"{r['silent_tls_clients']} TLS client that never handshakes + {r['idle_connections']} idle TCP "
            f"connections on the HTTPS endpoint; {r['scrapes']} sequential scrapes",
            f"{r['scrapes_ok']}/{r['scrapes']} scrapes OK; p50 {r['p50_ms_before']:.1f} ms before, "
            f"{r['p50_ms_under_attack']:.1f} ms during (max {r['max_ms_under_attack']:.1f} ms); "
            f"+{r['extra_threads']} threads (worker cap {r['max_workers']})",
            "no telemetry involved", "n/a (nothing to total)")


def basic_auth(r: dict[str, Any]) -> Row:
    t, f = r["timing"], r["flood"]
    return ("Basic auth probing",
            f"bcrypt cost {r['bcrypt_rounds']}: wrong password for a known vs an unknown user; a 100-byte "
            f"password; {f['clients']} clients x wrong passwords for {f['seconds']:g} s",
            f"unknown/known time ratio {t['unknown_over_known']:.2f} ({t['unknown_ms']:.0f} vs {t['known_ms']:.0f} "
            f"ms); 100-byte password: HTTP {r['long_password_status']}; flood: {f['requests']} requests, "
            f"{f['status_401']} x 401, {f['status_429']} x 429, {f['dropped']} dropped, server "
            f"{f['server_cpu_s']:.2f} CPU-s; right password afterwards: HTTP {r['right_password_after_flood']}",
            "no telemetry involved", "n/a (nothing to total)")


def alias_bomb(r: dict[str, Any]) -> Row:
    parts = []
    for name, cmd in (("facility_config", "aggregate --config"), ("web_config", "exporter --web.config.file")):
        c = r[name]
        parts.append(f"`wattfleet {cmd}`: exit {c['rc']} in {c['seconds']:.2f} s (process start included), peak "
                     f"RSS {mb(c['peak_rss_mb'])}: `{c['message'].strip()}`")
    return ("YAML alias bomb", f"{r['bytes']}-byte file, 9 anchors x 9 aliases (9^9 nodes once expanded)",
            "<br>".join(parts) + f"<br>(`aggregate --help` peaks at {mb(r['baseline_help']['peak_rss_mb'])})",
            "nothing read, nothing written", "n/a (refused before any work)")


def state_files(r: dict[str, Any]) -> Row:
    def show(c: dict[str, Any]) -> str:
        status = f"exit {c['exit']}" if isinstance(c["exit"], int) else str(c["exit"])
        message = c["message"]
        if ' msg="' in message:   # a logfmt line: its level and message
            level = message.split("level=", 1)[1].split(" ", 1)[0] if "level=" in message else ""
            message = f"{level}: " + message.split(' msg="', 1)[1].rstrip('"')
        return f"{status}: `{message[-200:]}`"
    n = r["deeply_nested_json"]
    if isinstance(n["exit"], int):
        nested, totals = show(n), "nested: refused at start-up"
    else:
        nested = (f"{show(n)}; `/-/ready` {n['ready_status']}, stopped with SIGTERM; file replaced by a valid state "
                  f"file: {n['state_file_rewritten']}")
        totals = f"nested: exported RAPL energy {n['exported_cpu_joules']:g} J after start (nothing restored)"
    return ("Hostile state file",
            "`--state-file` holding 100 000 nested `[`; a symlink to another file; a path whose directory is a file",
            f"nested: {nested}<br>symlink: {show(r['symlinked_state_file'])} (target "
            f"untouched: {r['symlink_target_untouched']})<br>unwritable: {show(r['unwritable_state_directory'])}",
            totals, "n/a (start-up check)")


def dripping_store(r: dict[str, Any]) -> Row:
    k, c = r["keep_alive"], r["connection_close"]
    return ("Store dripping a byte every 2 s",
            f"answer headers, then 1 byte / 2 s; aggregator ingest with a {r['deadline_s']:g} s deadline "
            "(the CLI's is 60 s), no retries; once keep-alive, once with `Connection: close`",
            f"keep-alive: stopped after {k['seconds']:.1f} s: `{k['error']}`; {k['windows_written']} windows "
            f"written<br>`Connection: close`: stopped after {c['seconds']:.1f} s: `{c.get('error', '')}`"
            + ("" if c["seconds"] < r["store_gives_up_after_s"] - 1 else
               f" (FINDING: ran until the store itself gave up after {r['store_gives_up_after_s']:g} s)")
            + f"; {c['windows_written']} windows written",
            f"next run with the good store: rc {k['next_run_rc']}/{c['next_run_rc']}, totals "
            f"{'identical' if k['totals_equal'] and c['totals_equal'] else 'DIFFERENT'}",
            yes_no(k["totals_equal"] and c["totals_equal"]))


def flooding_store(r: dict[str, Any]) -> Row:
    return ("Store answering 300 MB", "200 OK without Content-Length, then blanks up to 300 MB; `wattfleet aggregate "
            "--retries 0`",
            f"exit {r['rc']} after {r['seconds']:.1f} s, {r['store_sent_bytes'] >> 20} MiB sent before the client "
            f"hung up, peak RSS {mb(r['peak_rss_mb'])}: `{r['error']}`; {r['windows_written']} windows written",
            f"next run with the good store: rc {r['next_run_rc']}, totals "
            f"{'identical' if r['totals_equal'] else 'DIFFERENT'}", yes_no(r["totals_equal"]))


def inf_increase(r: dict[str, Any]) -> Row:
    return ("+Inf in the store", f"backfilled `{r['injected']}` into a copy of the clean run",
            f"exit {r['rc']}: `{r['error']}`; windows committed: {len(r['windows_committed'])} (the whole 24 h "
            f"page is refused), rows of the +Inf hour: {r['rows_of_the_inf_hour']}",
            "cannot equal while the store holds +Inf: the series must be deleted from the store; nothing wrong "
            "was written", "n/a (refused; nothing written)")


def implausible_inputs(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, fault, injected in (
            ("avg_ci_1e9", "Implausible grid intensity", "CISO.csv 2022-07-01 02:00 `avg_CI=1e9`"),
            ("pue_1e6", "Implausible PUE", "`pue: 1000000` for dc-ciso in the facility config"),
            ("gap_fill_none", "Grid gap with `fill: [none]`", "CISO.csv 02:00-04:59 removed, `fill: [none]`")):
        c = r[key]
        rows.append((fault, injected, f"exit {c['rc']}: `{c['error'].strip()}`; {c['windows_written']} windows "
                     "written", f"input fixed, next run rc {c['next_run_rc']}; totals "
                     f"{'identical' if c['totals_equal'] else 'DIFFERENT'}", yes_no(c["totals_equal"])))
    return rows


def unusable_databases(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, fault, injected in (("corrupt", "Corrupt DuckDB file", "23 kB of text as the `--db` file"),
                                 ("newer_schema", "Newer-schema DuckDB file", "schema_version = latest + 1")):
        rep, agg = r[f"{key}/report"], r[f"{key}/aggregate"]
        rows.append((fault, injected, f"`report` exit {rep['rc']}, `aggregate` exit {agg['rc']}, no traceback: "
                     f"{not (rep['traceback'] or agg['traceback'])}: `{agg['error'][:300]}`",
                     f"file left unchanged: {r[f'{key}/file_unchanged']}", "n/a (refused; nothing written)"))
    return rows


def plan_hostile(r: dict[str, Any]) -> Row:
    one, many, e1, e2, gone = (r["one_site"], r["site_x400"], r["energy_1e400"], r["energy_1e400kwh"],
                               r["client_leaves"])
    return ("Hostile `/api/plan` queries", "one site repeated 400 times; `energy=1e400` and `1e400kWh`; a client "
            "that disconnects 0.5 s into a 3-site plan (grid loader slowed to 1 s a site); HttpServer + plan route",
            f"x400: HTTP {many['status']} in {ms(many['seconds'])} (one site: {ms(one['seconds'])}), same body as "
            f"one site: {many['same_body_as_one_site']}, strict JSON: {many['strict_json']}<br>1e400: HTTP "
            f"{e1['status']} in {ms(e1['seconds'])} `{e1['error']}`; 1e400kWh: HTTP {e2['status']} `{e2['error']}`; "
            f"strict JSON: {e1['strict_json'] and e2['strict_json']}<br>client left: abandoned "
            f"{gone['abandoned']}, noticed after {gone['noticed_after_s']:.2f} s, {gone['sites_loaded']} of "
            f"{gone['of_sites']} sites loaded", "no totals involved", "n/a (read-only)")


def reasons(rejected: dict[str, float]) -> str:
    """``wattfleet_inference_rejected_samples_total`` per reason, as the table shows it."""
    return ", ".join(f"{int(n)} `{reason}`" for reason, n in rejected.items()) or "none"


def tokens(n: float) -> str:
    return f"{n / 1e6:.1f} M" if abs(n) >= 1e6 else f"{n:.0f}"


def inference_hostile_counter(r: dict[str, Any]) -> Row:
    did = "; ".join(f"{s['page_value']}: exported {s['exported_prefill_tokens']:.0f}, engine_up "
                    f"{s['engine_up']:.0f}" for s in r["steps"])
    return ("Engine counter 1e308, NaN, +Inf",
            "vLLM page's `prompt_tokens_total` reads 1e308, then NaN, then +Inf (one scrape each), then the "
            "last good value + 500; real `InferenceSensor`, fake engine on 127.0.0.1",
            f"{did}; every value rejected and counted: {reasons(r['rejected'])} in "
            f"`rejected_samples_total`; non-finite samples exported: "
            f"{sum(s['non_finite_samples'] for s in r['steps'])}",
            f"exported prefill tokens {', '.join(f'{v:.0f}' for v in r['exported_while_hostile'])} while "
            f"hostile (unchanged), "
            f"{r['exported_after']:.0f} after vs truth {r['truth_after']:.0f}",
            yes_no(r["unchanged_while_hostile"] and r["all_finite"] and r["exported_after"] == r["truth_after"]))


def inference_replicated(r: dict[str, Any]) -> Row:
    return ("Replicated engine endpoint",
            f"one URL answered in turn by 2 vLLM replicas (1.0 M and 0.9 M prompt tokens, each +1000 per "
            f"round, the second started later); {r['scrapes']} scrapes 1 s apart",
            f"refused at scrape {r['refused_at_scrape']}: `engine_up` {r['engine_up']:.0f}, collector error "
            f"`{', '.join(r['collector_errors'])}`, {reasons(r['rejected'])}; "
            f"{r['running_gauges_exported']} gauges from the refused endpoint",
            f"exported prefill tokens {tokens(r['exported_prefill_tokens'])} vs truth "
            f"{tokens(r['truth_prefill_tokens'])} (never above it; summing drops as restarts would have "
            f"exported {tokens(r['naive_sum_prefill_tokens'])})",
            "yes (at most the truth)" if r["at_most_truth"] else "no: above the truth")


def inference_dipping(r: dict[str, Any]) -> Row:
    return ("Engine counter dipping now and then",
            f"one vLLM process, prompt tokens +100 per scrape, reading {r['dip_tokens']} lower on "
            f"{r['dips']} of {r['scrapes']} scrapes (next page right again)",
            f"dips rejected, not re-added as restarts: {reasons(r['rejected'])}; `engine_up` "
            f"{r['engine_up']:.0f} (too few dips to look replicated)",
            f"exported {r['exported_prefill_tokens']:.0f} vs truth {r['truth_prefill_tokens']:.0f} prefill tokens",
            yes_no(r["equal"]))


def inference_marked(r: dict[str, Any]) -> Row:
    did, totals, equal = [], [], []
    cases = [c for c in r.values() if isinstance(c, dict)]
    for c in cases:
        got = c["exported_marked_joules"]
        claim = f"{c['claimed_decode_joules']:g} J claim"
        did.append(f"{claim}: {reasons(c['rejected'])}; exported prefill/decode/idle "
                   f"{got['prefill']:.0f}/{got['decode']:.0f}/{got['idle']:.0f} J")
        totals.append(f"{claim}: exported marked {c['exported_marked_total']:.0f} J vs GPUs' measured "
                      f"{c['gpu_true_joules']:.0f} J (cap {c['cap_joules']:.0f} J: measured + 5% + 10 J per GPU "
                      f"per interval; honest page total {c['honest_marked_total']:.0f} J)")
        above = c["above_measured_joules"]
        equal.append(f"{claim}: " + ("no: above the cap" if not c["capped_by_gpu_energy"] else
                                     f"capped, but {above:.0f} J above the measured energy (the cap's tolerance)"
                                     if above > 0 else "yes (within the measured energy)"))
    first = cases[0]
    return ("Marked phase energy above the GPUs'",
            "vLLM page's `marked` decode energy jumps by " + " or by ".join(
                f"{c['claimed_decode_joules']:g} J" for c in cases) +
            f" in 1 s; 2 fake GPUs at {first['gpu_watts'] / 2:.0f} W under a real `Sampler` (honest marked "
            "energy before and after)",
            "<br>".join(did), "<br>".join(totals), "; ".join(equal))


def inference_churn(r: dict[str, Any]) -> Row:
    full = r.get("full_run")
    full_text = (f"; full run ({r['full_run_file']}, {full['labels_seen']} labels over 20 scrapes): RSS "
                 f"{full['rss_start_mb']:.0f} -> {full['rss_end_mb']:.0f} MB, sample p50 "
                 f"{ms(full['sample_seconds_p50'])}, max {ms(full['sample_seconds_max'])}" if full else "")
    return ("Churning model labels",
            f"{r['models_per_page']} never-seen model names on every vLLM page, {r['ticks']} scrapes after the "
            f"first (default `max_models` 100)",
            f"{r['labels_seen']} labels seen, {r['series_exported_last_tick']} series exported; campaign process RSS "
            f"{r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB; `sample()` p50 {ms(r['sample_seconds_p50'])}, "
            f"max {ms(r['sample_seconds_max'])}{full_text}",
            "no totals involved (series bounded)", "n/a (nothing to total)")


def inference_rows(r: dict[str, Any]) -> list[Row]:
    return [inference_hostile_counter(r["hostile_counter"]), inference_replicated(r["replicated_endpoint"]),
            inference_dipping(r["dipping_counter"]), inference_marked(r["marked_above_gpus"]),
            inference_churn(r["label_churn"])]


def hostile_rows(exporter: dict[str, Any], aggregator: dict[str, Any], inference: dict[str, Any]) -> list[Row]:
    rows = [hung_nvml(exporter["hung_nvml"]), rapl_implausible(exporter["rapl_implausible"]),
            tls_idle(exporter["tls_idle"]), basic_auth(exporter["basic_auth"]), alias_bomb(exporter["alias_bomb"]),
            state_files(exporter["state_files"]), dripping_store(aggregator["dripping_store"]),
            flooding_store(aggregator["flooding_store"]), inf_increase(aggregator["inf_increase"])]
    rows += implausible_inputs(aggregator["implausible_inputs"])
    rows += unusable_databases(aggregator["unusable_databases"])
    rows.append(plan_hostile(aggregator["plan_hostile"]))
    rows += inference_rows(inference)
    return rows


def markdown_rows(exporter: dict[str, Any], aggregator: dict[str, Any], inference: dict[str, Any]) -> list[str]:
    return ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
            for row in hostile_rows(exporter, aggregator, inference)]
