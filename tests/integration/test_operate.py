#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Operating weir: a real Prometheus server scrapes it, the status API answers during a run,
a live reload moves records to a new collector without losing packets, the alert rules load,
and a device that cannot give the queues asked for is a configuration error."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURE = "zeek__var-services-std-ports.pcap"  # also bundled in captures/
ALERTS = os.path.join(harness.ROOT, "deploy", "prometheus", "weir-alerts.yml")


def free_tcp_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None, timeout=10):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def curl(url):
    """The status API through a real HTTP client."""
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", url], capture_output=True, text=True,
                       check=True)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


class HeldReplay:
    """weir replaying a capture with --hold, its management server on a free port."""

    def __init__(self, capture, extra=()):
        self.mport = free_tcp_port()
        self.base = f"http://127.0.0.1:{self.mport}"
        self.proc = subprocess.Popen([harness.WEIR, "--drivers-config", harness.DRIVERS, "--stats-interval", "0",
                                      "-r", capture, "--hold", "--management", f"127.0.0.1:{self.mport}"] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_finished(self):
        def done():
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.stderr.read())
            try:
                code, body = http(self.base + "/status", timeout=2)
            except OSError:
                return False
            return code == 200 and json.loads(body)["replay_finished"]
        harness.wait_for(done, timeout=60, what="end of the replay")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


class Operate(unittest.TestCase):
    def test_sigterm_at_any_point_of_a_replay(self):
        """SIGTERM from the moment weir has taken the signal (its handler shows in
        /proc/PID/status: at the start of main, before DPDK's start-up) to past the end of a
        replay, in 50 ms steps: every run exits 0 with a report whose accounting balances, and
        every packet it counts in records is in the exporter's file."""

        def catches_sigterm(pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    line = next(l for l in f if l.startswith("SigCgt:"))
            except (OSError, StopIteration):
                return False
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
        capture = harness.capture("nfstream__1kxun.pcap")
        tmp = harness.scratch(self, "weir-sigterm-")
        stopped = []
        for i, delay in enumerate(x / 1000 for x in range(0, 900, 50)):
            out, summary = os.path.join(tmp, f"{i}.jsonl"), os.path.join(tmp, f"{i}.json")
            p = subprocess.Popen([harness.WEIR, "--drivers-config", harness.DRIVERS, "--stats-interval", "0",
                                  "--management", "none", "-r", capture, "--export", "jsonl=file://" + out,
                                  "--summary-json", summary], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
            harness.wait_for(lambda: catches_sigterm(p.pid) or p.poll() is not None, what="weir to take SIGTERM")
            time.sleep(delay)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, f"SIGTERM after {delay} s: {err[-1500:]}")
            with open(summary) as f:
                acc = json.load(f)["accounting"]
            self.assertTrue(acc["balanced"], f"{delay} s: {acc}")
            in_file = 0
            if os.path.exists(out):
                with open(out) as f:
                    in_file = sum(json.loads(line)["packets"] for line in f)
            self.assertEqual(in_file, acc["in_records"], f"{delay} s")
            stopped.append(acc["rx_packets"])
        print(f"\npackets replayed when SIGTERM came, 0 to 850 ms after main: {stopped}", file=sys.stderr)

    def test_alert_rules_load(self):
        p = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_journal_priorities_and_service_notification(self):
        """As under systemd: stderr is the journal (JOURNAL_STREAM), so every line carries its
        priority, DPDK's too; the service manager hears READY, RELOADING, WATCHDOG and STOPPING."""
        import socket
        capture = harness.capture(CAPTURE)
        tmp = harness.scratch(self, "weir-journal-")
        sock_path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(sock_path)
        sock.settimeout(30)
        err_path = os.path.join(tmp, "stderr")
        err = open(err_path, "w")
        self.addCleanup(err.close)
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}", NOTIFY_SOCKET=sock_path,
                   WATCHDOG_USEC="400000")
        mport = free_tcp_port()
        down = harness.free_udp_port()  # nothing listens: delivery failures are warnings
        proc = subprocess.Popen([harness.WEIR, "--drivers-config", harness.DRIVERS, "--stats-interval", "0", "-r", capture,
                                 "--hold", "--management", f"127.0.0.1:{mport}", "--ipfix", f"udp://127.0.0.1:{down}",
                                 "--", "--log-level=info"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def next_message():
            return sock.recv(4096).decode()
        self.assertTrue(next_message().startswith("READY=1\nSTATUS=capturing on 1 port(s) with 1 worker(s)"))
        watchdogs = 0
        deadline = time.time() + 5
        while watchdogs < 3 and time.time() < deadline:
            watchdogs += next_message() == "WATCHDOG=1"
        self.assertEqual(watchdogs, 3, "a ping every half watchdog interval")
        code, body = http(f"http://127.0.0.1:{mport}/reload", data=b"")
        self.assertEqual(code, 200, body)
        seen = []
        while "READY=1" not in seen:
            m = next_message()
            if m != "WATCHDOG=1":
                seen.append(m.split("\n")[0])
        self.assertEqual(seen, ["RELOADING=1", "READY=1"])
        proc.send_signal(signal.SIGTERM)
        while next_message() != "STOPPING=1":
            pass
        self.assertEqual(proc.wait(timeout=60), 0)
        err.close()
        with open(err_path) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3-7]>", "every line has its priority")
        self.assertIn("<6>EAL: Detected CPU lcores", "\n".join(lines), "DPDK's lines go the same way")
        self.assertIn(f"<4>weir: exporter ipfix udp://127.0.0.1:{down}: delivery failed: Connection refused", "\n".join(lines))
        self.assertIn("<5>weir: reload applied", "\n".join(lines))
        self.assertIn("<5>weir: Terminated: stopping RX", "\n".join(lines))
        self.assertIn("<6>weir: port 0 ", "\n".join(lines))

    def test_log_level(self):
        capture = harness.capture(CAPTURE)
        p = harness.run_weir(["-r", capture, "--log-level", "warning", "--management", "none"])
        self.assertNotIn("weir: port 0", p.stderr, "info lines are not written")
        self.assertIn("weir: warning: no exporters", p.stderr)
        p = harness.run_weir(["-r", capture, "--log-level", "loud"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("weir: config: log_level: expected error, warning, notice, info or debug, got \"loud\"", p.stderr)

    def test_systemd_units(self):
        """The unit and its instance template, rendered for a prefix, pass systemd-analyze verify
        without a complaint, keep a bad configuration from restarting forever, and keep their
        sandbox (exposure score at most 4.0, 'OK')."""
        tmp = harness.scratch(self, "weir-units-")
        prefix = os.path.join(tmp, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        os.makedirs(os.path.join(prefix, "lib", "weir"))
        os.symlink(harness.WEIR, os.path.join(prefix, "bin", "weir"))
        shutil.copy(os.path.join(harness.ROOT, "deploy", "systemd", "weir-prepare"), os.path.join(prefix, "lib", "weir"))
        os.makedirs(os.path.join(prefix, "share", "man", "man8"))  # Documentation=man:weir(8), as installed
        shutil.copy(os.path.join(harness.ROOT, "doc", "weir.8"), os.path.join(prefix, "share", "man", "man8"))
        env = dict(os.environ, MANPATH=os.path.join(prefix, "share", "man") + ":")
        units = os.path.join(tmp, "units")
        subprocess.run([os.path.join(harness.ROOT, "deploy", "systemd", "render-units"), prefix, units], check=True)
        shutil.copy(os.path.join(units, "weir@.service"), os.path.join(units, "weir@probe1.service"))
        for unit in ("weir.service", "weir@probe1.service"):
            path = os.path.join(units, unit)
            p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, cwd=units, env=env)
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), unit)
            p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=40", path],
                               capture_output=True, text=True, cwd=units)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(path) as f:
                text = f.read()
            self.assertIn("RestartPreventExitStatus=2", text)
            self.assertNotIn("--stats-interval", text, "the file's settings stay reloadable")
        with open(os.path.join(units, "weir@probe1.service")) as f:
            text = f.read()
        self.assertIn("-c /etc/weir/%i.json", text)
        self.assertIn("EnvironmentFile=-/etc/default/weir-%i", text)

    def test_prometheus_scrapes_a_replay(self):
        capture = harness.capture(CAPTURE)
        packets = int(subprocess.run(["capinfos", "-c", "-M", capture], capture_output=True, text=True,
                                     check=True).stdout.split()[-1])
        weir = HeldReplay(capture)
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        tmp = harness.scratch(self, "weir-prom-")
        pport = free_tcp_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"rule_files: ['{ALERTS}']\n"
                    "scrape_configs:\n"
                    f"  - job_name: weir\n    static_configs: [{{targets: ['127.0.0.1:{weir.mport}']}}]\n")
        prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{pport}"],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "prometheus.log"), "w"))
        self.addCleanup(harness.stop, prom, signal.SIGKILL)
        api = f"http://127.0.0.1:{pport}/api/v1"

        def ready():
            try:
                return http(f"http://127.0.0.1:{pport}/-/ready", timeout=2)[0] == 200
            except OSError:
                return False
        harness.wait_for(ready, timeout=60, what="prometheus to start")
        weir.wait_finished()

        def scraped_all():
            code, body = http(api + "/query?query=weir_port_rx_packets_total")
            res = json.loads(body)["data"]["result"] if code == 200 else []
            return res and int(float(res[0]["value"][1])) == packets
        harness.wait_for(scraped_all, timeout=30, what=f"prometheus to see {packets} packets")
        code, body = http(api + "/query?query=sum(weir_worker_packets_total)")
        self.assertEqual(int(float(json.loads(body)["data"]["result"][0]["value"][1])), packets)
        code, body = http(api + "/query?query=up{job=\"weir\"}")
        self.assertEqual(json.loads(body)["data"]["result"][0]["value"][1], "1")
        # Prometheus conventions: seconds, a start time, the process, the last reload.
        for q, check in (("weir_worker_busy_seconds_total", lambda v: 0 < v < 3600),
                         ("weir_worker_seconds_total", lambda v: 0 < v < 3600),
                         ("time() - weir_start_time_seconds", lambda v: 0 <= v < 600),
                         ("time() - process_start_time_seconds", lambda v: 0 <= v < 600),
                         ("process_resident_memory_bytes", lambda v: v > 1 << 20),
                         ("process_open_fds", lambda v: 3 <= v < 1000),
                         ("process_cpu_seconds_total", lambda v: v > 0),
                         ("weir_last_reload_successful", lambda v: v == 1)):
            code, body = http(api + "/query?query=" + urllib.parse.quote(q))
            res = json.loads(body)["data"]["result"]
            self.assertTrue(res, q)
            self.assertTrue(check(float(res[0]["value"][1])), f"{q} = {res[0]['value'][1]}")
        # The exposition itself passes Prometheus' own linter.
        p = subprocess.run(["promtool", "check", "metrics"], input=http(weir.base + "/metrics")[1], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        code, body = http(api + "/rules")
        names = {r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]}
        self.assertIn("WeirNicDrops", names)
        # Every query of the Grafana dashboard is valid PromQL and finds series.
        with open(os.path.join(harness.ROOT, "deploy", "grafana", "weir-dashboard.json")) as f:
            dash = json.load(f)
        for panel in dash["panels"]:
            for t in panel["targets"]:
                q = t["expr"].replace("$__rate_interval", "1m")
                code, body = http(api + "/query?query=" + urllib.parse.quote(q))
                self.assertEqual(code, 200, f"{panel['title']}: {q}: {body}")
                if "rate(" not in q:
                    self.assertTrue(json.loads(body)["data"]["result"], f"{panel['title']}: {q} finds nothing")
        rc, out, err = weir.stop()
        self.assertEqual(rc, 0, err)

    def test_status_api_and_top_flows(self):
        capture = harness.capture(CAPTURE)
        # Nothing ends during the replay (not even closed TCP connections), so the active flows are
        # exactly what tshark counts per direction.
        weir = HeldReplay(capture, ["--idle-timeout", "86400", "--active-timeout", "86400", "--tcp-end-timeout", "86400"])
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        weir.wait_finished()
        code, body = curl(weir.base + "/healthz")
        self.assertEqual((code, body.strip()), (200, "ok"))
        code, body = curl(weir.base + "/status")
        self.assertEqual(code, 200)
        st = json.loads(body)
        self.assertEqual(st["mode"], "replay")
        self.assertEqual(st["ports"][0]["driver"], "net_ring")  # weir's capture reader feeds a ring port
        self.assertIn("capture reader", st["ports"][0]["rss"])
        self.assertEqual(st["ports"][0]["rx_packets"], sum(w["rx_packets"] for w in st["workers"]))
        self.assertGreater(st["workers"][0]["flows_active"], 0)
        # The heaviest directional flows by bytes, as tshark counts them.
        truth = sorted((t for t in harness.load_truth(capture) if t.proto in (6, 17)), key=lambda t: -t.octets)
        n = next(k for k in range(5, 2, -1) if truth[k - 1].octets != truth[k].octets)  # no tie at the cut
        code, body = curl(f"{weir.base}/flows/top?by=bytes&n={n}")
        self.assertEqual(code, 200, body)
        got = [(f["proto"], f["src"], f["dst"], f["sport"], f["dport"], f["bytes"]) for f in json.loads(body)["flows"]]
        want = [(t.proto, t.src, t.dst, t.sport, t.dport, t.octets) for t in truth[:n]]
        self.assertEqual(got, want)
        code, body = curl(f"{weir.base}/flows/top?by=packets&n=1")
        self.assertEqual(json.loads(body)["flows"][0]["packets"], max(t.packets for t in harness.load_truth(capture)
                                                                      if t.proto in (6, 17)))
        code, body = curl(f"{weir.base}/flows/top?by=colour")
        self.assertEqual(code, 400)
        self.assertIn("by: expected bytes or packets", body)
        # Any bytes in a query: a 400 with the value quoted back in printable ASCII, as JSON, and
        # the probe goes on (such a value once ended the process: not valid UTF-8 for JSON).
        for query, quoted in (("n=%ff", r"\xff"), ("by=%c3%28", r"\xc3("), ("n=5%00", r"5\x00"),
                              ("n=%2B5", "+5"), ("n=99999999999999999999", "99999999999999999999"),
                              ("n=-1", "-1"), ("n=%22%5c", r"\x22\x5c")):
            code, body = curl(f"{weir.base}/flows/top?{query}")
            self.assertEqual(code, 400, query)
            self.assertTrue(json.loads(body)["error"].endswith(f'got "{quoted}"'), body)
        code, body = curl(f"{weir.base}/history?points=%80")
        self.assertEqual(code, 400, body)
        self.assertEqual(json.loads(body)["error"], r'points: expected 10..5000, got "\x80"')
        code, body = curl(f"{weir.base}/flows/top?n=%35")  # %35 is "5"
        self.assertEqual((code, len(json.loads(body)["flows"])), (200, min(5, len(truth))))
        self.assertEqual(curl(weir.base + "/healthz"), (200, "ok\n"))
        # A missing parameter takes its documented default: by=bytes, n=20.
        code, body = curl(f"{weir.base}/flows/top?n={n}")
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["by"], "bytes")
        self.assertEqual([f["bytes"] for f in json.loads(body)["flows"]], [t.octets for t in truth[:n]])
        code, body = curl(f"{weir.base}/flows/top")
        self.assertEqual(code, 200, body)
        self.assertEqual(len(json.loads(body)["flows"]), min(20, len(truth)))
        code, body = curl(f"{weir.base}/flows/top?by=packets")
        self.assertEqual((code, json.loads(body)["by"]), (200, "packets"))
        # Read-only endpoints refuse other methods.
        for path in ("/status", "/metrics", "/flows/top", "/healthz"):
            p = subprocess.run(["curl", "-sS", "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}",
                                weir.base + path], capture_output=True, text=True, check=True)
            self.assertEqual(p.stdout, "405", path)
        p = subprocess.run(["curl", "-sS", "-I", weir.base + "/status"], capture_output=True, text=True, check=True)
        self.assertTrue(p.stdout.startswith("HTTP/1.1 200"), p.stdout)
        code, body = curl(weir.base + "/reload")
        self.assertEqual(code, 405)
        # No endpoint takes a body: one over 4 KiB is 413 before anything reads it (a reload
        # included: nothing is reloaded); headers over 16 KiB are refused too.
        for method, path in (("POST", "/reload"), ("GET", "/status")):
            p = subprocess.run(["curl", "-sS", "-X", method, "--data-binary", "@-", "-o", "/dev/null", "-w",
                                "%{http_code}", weir.base + path], input="x" * 5000, capture_output=True, text=True,
                               check=True)
            self.assertEqual(p.stdout, "413", path)
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + "a" * 20000,
                            weir.base + "/status"], capture_output=True, text=True, check=True)
        self.assertEqual(p.stdout, "400")
        code, body = curl(weir.base + "/metrics")
        self.assertIn('weir_flow_table_entries{worker="0"}', body)
        rc, out, err = weir.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("accounting:", out)


    def test_metrics_address_serves_metrics_only(self):
        """A scraping address for a Prometheus elsewhere: /metrics and /healthz, nothing of
        /status, /flows/top or /reload (who talks to whom, and control, stay on loopback)."""
        capture = harness.capture(CAPTURE)
        sport = free_tcp_port()
        weir = HeldReplay(capture, ["--metrics", f"127.0.0.1:{sport}"])
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        weir.wait_finished()
        scrape = f"http://127.0.0.1:{sport}"
        code, body = curl(scrape + "/metrics")
        self.assertEqual(code, 200)
        self.assertIn("weir_port_rx_packets_total", body)
        self.assertEqual(curl(scrape + "/healthz")[0], 200)
        for path in ("/status", "/flows/top", "/reload"):
            self.assertEqual(curl(scrape + path)[0], 404, path)
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", scrape + "/reload"],
                           capture_output=True, text=True, check=True)
        self.assertEqual(p.stdout, "404")
        self.assertEqual(curl(weir.base + "/status")[0], 200, "the full API stays where it was")
        rc, out, err = weir.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn(f"weir: metrics only on http://127.0.0.1:{sport}/ (/metrics /healthz)", err)

    def test_reload_names_the_settings_the_command_line_pins(self):
        capture = harness.capture(CAPTURE)
        tmp = harness.scratch(self, "weir-pin-")
        cfg = os.path.join(tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"stats_interval_s": 0}, f)
        weir = HeldReplay(capture, ["-c", cfg])  # with --stats-interval 0
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        weir.wait_finished()
        with open(cfg, "w") as f:
            json.dump({"stats_interval_s": 30, "timeouts": {"idle_s": 20}}, f)
        code, body = http(weir.base + "/reload", data=b"")
        self.assertEqual(code, 200, body)
        r = json.loads(body)
        self.assertEqual(r["changed"], ["timeouts"])
        self.assertEqual(r["pinned"], [{"key": "stats_interval_s", "option": "--stats-interval", "value": 0.0,
                                        "file": 30}])
        rc, out, err = weir.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("weir: reload: stats_interval_s stays 0.0, as --stats-interval on the command line says "
                      "(the file says 30)", err)


class LiveReload(harness.NamespaceCase):
    """af_packet on a veth in a namespace made here: change the exporter while capturing."""

    NAME = "weir-op"

    def nfcapd(self, port):
        d = os.path.join(self.tmp, f"nf{port}")
        p = self.netns.nfcapd(d, port)
        self.addCleanup(harness.stop, p, signal.SIGKILL)
        return p, d

    def send(self, conversations, per):
        return self.send_frames("wb", conversations, per)

    def test_reload_moves_records_to_the_new_collector(self):
        a, da = self.nfcapd(4739)
        b, db = self.nfcapd(4740)
        cfg = os.path.join(self.tmp, "weir.json")
        base = {"ports": [{"device": "net_af_packet0,iface=wa"}], "timeouts": {"idle_s": 1},
                "ipfix": {"max_delay_ms": 100}, "management": {"listen": "none"}}
        with open(cfg, "w") as f:
            json.dump(dict(base, exporters=[{"url": "udp://127.0.0.1:4739"}]), f)
        summary = os.path.join(self.tmp, "summary.json")
        weir = self.start_weir(cfg, summary)
        first = self.send(20, 3)
        time.sleep(3)  # idle timeout 1 s: these flows end and go to the first collector
        with open(cfg, "w") as f:
            json.dump(dict(base, exporters=[{"url": "udp://127.0.0.1:4740"}], timeouts={"idle_s": 1, "active_s": 30}), f)
        weir.send_signal(signal.SIGHUP)
        time.sleep(1)
        second = self.send(30, 2)
        time.sleep(3)
        weir.send_signal(signal.SIGTERM)
        out, err = weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0, err)
        self.assertIn("reload applied (exporters, timeouts)", err)
        harness.stop(a, signal.SIGTERM)
        harness.stop(b, signal.SIGTERM)

        def packets(d):
            info = subprocess.run(["nfdump", "-R", d, "-I"], capture_output=True, text=True, check=True).stdout
            self.assertIn("Sequence failures: 0", info)
            return int(next(l.split()[1] for l in info.splitlines() if l.startswith("Packets:")))
        with open(summary) as f:
            s = json.load(f)
        self.assertTrue(s["accounting"]["balanced"])
        self.assertEqual(s["rx_packets"], first + second, "every packet sent was received")
        self.assertEqual(packets(da), first)
        self.assertEqual(packets(db), second)

    def test_reload_refuses_what_needs_a_restart(self):
        cfg = os.path.join(self.tmp, "weir.json")
        base = {"ports": [{"device": "net_af_packet0,iface=wa"}], "management": {"listen": "127.0.0.1:9471"}}
        with open(cfg, "w") as f:
            json.dump(base, f)
        weir = subprocess.Popen(self.nsexec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-c", cfg,
                                               "--stats-interval", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: weir.poll() is None and weir.kill())
        time.sleep(3)
        with open(cfg, "w") as f:
            json.dump(dict(base, workers=2, flow_table={"capacity_per_worker": 4096},
                           ports=[{"device": "net_af_packet0,iface=wa", "direction": "ingress"}],
                           exporters=[{"format": "jsonl", "url": "file://" + os.path.join(self.tmp, "f.jsonl"),
                                       "rtt": True, "direction": True}]), f)
        out = subprocess.run(self.nsexec + ["curl", "-sS", "-XPOST", "http://127.0.0.1:9471/reload"],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        self.assertFalse(r["ok"])
        self.assertIn("workers: cannot change while weir runs (restart weir to change it)", r["errors"])
        self.assertIn("flow_table.capacity_per_worker: cannot change while weir runs (restart weir to change it)",
                      r["errors"])
        self.assertIn("ports: cannot change while weir runs (restart weir to change it)", r["errors"])
        self.assertIn("exporters: handshake times are kept only when an exporter asked for them at start "
                      "(restart weir to add \"rtt\": true)", r["errors"])
        st = json.loads(subprocess.run(self.nsexec + ["curl", "-sS", "http://127.0.0.1:9471/status"],
                                       capture_output=True, text=True, check=True).stdout)
        self.assertEqual(st["config"]["workers"], 1, "nothing changed")
        self.assertEqual(st["reload_failures"], 1)
        metrics = subprocess.run(self.nsexec + ["curl", "-sS", "http://127.0.0.1:9471/metrics"],
                                 capture_output=True, text=True, check=True).stdout
        self.assertIn("\nweir_last_reload_successful 0\n", metrics)
        weir.send_signal(signal.SIGTERM)
        weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0)

    def test_more_queues_than_the_device_allows(self):
        p = subprocess.run(self.nsexec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-i",
                                          "net_af_packet0,iface=wa,qpairs=1", "-w", "2", "--management", "none"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("weir: config: ports[0]: 2 RX queues needed (one per worker), device net_af_packet0 "
                      "(net_af_packet) has 1", p.stderr)



class FullDisk(harness.NamespaceCase):
    """A file exporter on a filesystem that fills up (a 256 KiB tmpfs mounted here) while weir
    captures on af_packet: what ends meanwhile is counted lost, the log says so and says when
    it recovers, and the file holds whole IPFIX messages only, templates before the data that
    needs them, the records of after the disk had room again included."""

    NAME = "weir-disk"

    def send(self, conversations, per):
        return self.send_frames("wa", conversations, per)

    def test_full_disk_costs_counted_records_and_no_torn_message(self):
        disk = os.path.join(self.tmp, "disk")
        os.makedirs(disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", disk], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", disk])
        out = os.path.join(disk, "flows.ipfix")
        cfg = os.path.join(self.tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_af_packet0,iface=wb"}], "timeouts": {"idle_s": 1},
                       "ipfix": {"max_delay_ms": 100}, "management": {"listen": "none"},
                       "exporters": [{"url": "file://" + out, "options": False}]}, f)
        summary = os.path.join(self.tmp, "summary.json")
        weir = self.start_weir(cfg, summary)
        filler = os.path.join(disk, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
        first = self.send(40, 2)  # 80 records that end while the disk is full
        time.sleep(3)
        os.unlink(filler)
        second = self.send(30, 3)  # 60 records after
        time.sleep(3)
        weir.send_signal(signal.SIGTERM)
        _, err = weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0, err)
        self.assertIn("No space left on device", err)
        self.assertIn("recovered after", err)
        with open(summary) as f:
            s = json.load(f)
        self.assertTrue(s["accounting"]["balanced"])
        self.assertEqual(s["rx_packets"], first + second)
        ex = s["exporters"][0]
        with open(out, "rb") as f:
            msgs = harness.ipfix_stream(f.read())  # raises on a torn message or data before its template
        self.assertEqual(msgs[0][2][0][0], "templates")
        records = sum(x[1] for m in msgs for x in m[2] if x[0] == "data")
        packets = sum(x[2] for m in msgs for x in m[2] if x[0] == "data")
        self.assertEqual(records, ex["records"])
        self.assertEqual(records + ex["lost_records"], 140)
        self.assertGreaterEqual(ex["lost_records"], 80, "what ended while the disk was full")
        self.assertEqual(packets, second, "after the disk had room: every packet in the file")


if __name__ == "__main__":
    unittest.main(verbosity=2)
