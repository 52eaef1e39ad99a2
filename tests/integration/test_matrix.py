#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The flow matrix and its policy with the real weir binary: a real capture's frames sent over a
veth pair into af_packet, /matrix against the matrix an analyst computes from tshark's dissection
of the same capture (client zone, server zone, service; flows, packets and bytes each way); a
crafted capture replayed against a policy raises exactly one out_of_policy event; configuration
errors name the field."""
import collections
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import unittest
import ipaddress

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_operate import HeldReplay, http  # noqa: E402

CAPTURE = "ndpi__teams.pcap"  # a Teams call: TCP, UDP (DNS, STUN, media), ICMP; one client, many servers
ZONES = {
    "lan": ["192.168.1.0/24"],
    "gateway": ["192.168.1.1/32"],
    "microsoft": ["52.112.0.0/14", "13.107.0.0/16", "40.64.0.0/10", "104.40.0.0/13"],
}
PROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def zone_of(addr):
    ip = ipaddress.ip_address(addr)
    best, best_len = "other", -1
    for name, prefixes in ZONES.items():
        for p in prefixes:
            net = ipaddress.ip_network(p)
            if ip.version == net.version and ip in net and net.prefixlen > best_len:
                best, best_len = name, net.prefixlen
    return best


def truth_matrix(capture):
    """What an analyst reads off tshark: conversations (both directions of a 5-tuple; ICMP: of a
    type and code), the client is whoever sent first, the service is the client's destination
    port (ICMP: the type); counted per (client zone, server zone, protocol, service)."""
    fields = ["ip.src", "ip.dst", "ip.proto", "ip.len", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
              "icmp.type", "icmp.code"]
    conv = {}
    order = []
    for v in harness.tshark_rows(capture, fields, ["-o", "ip.defragment:FALSE", "-Y", "ip", "-E", "occurrence=f"]):
        proto = int(v["ip.proto"])
        src, dst = v["ip.src"], v["ip.dst"]
        if proto == 1:
            sp, dp = 0, int(v["icmp.type"] or 0) << 8 | int(v["icmp.code"] or 0)
            key = (proto, frozenset([src, dst]) if src != dst else (src,), dp)
        else:
            sp = int(v["tcp.srcport"] or v["udp.srcport"] or 0)
            dp = int(v["tcp.dstport"] or v["udp.dstport"] or 0)
            key = (proto, frozenset([(src, sp), (dst, dp)]) if (src, sp) != (dst, dp) else ((src, sp),))
        c = conv.get(key)
        if c is None:
            c = conv[key] = {"client": (src, sp), "server": dst, "proto": proto, "port": dp >> 8 if proto == 1 else dp,
                             "cp": 0, "cb": 0, "sp": 0, "sb": 0}
            order.append(key)
        side = "c" if (src, sp) == c["client"] else "s"
        c[side + "p"] += 1
        c[side + "b"] += int(v["ip.len"])
    cells = collections.defaultdict(lambda: collections.Counter())
    for key in order:
        c = conv[key]
        cell = (zone_of(c["client"][0]), zone_of(c["server"]), PROTO.get(c["proto"], c["proto"]), c["port"])
        m = cells[cell]
        m["flows"] += 1
        m["client_packets"] += c["cp"]
        m["client_bytes"] += c["cb"]
        m["server_packets"] += c["sp"]
        m["server_bytes"] += c["sb"]
    return {k: dict(v) for k, v in cells.items()}


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return frames


def weir_cells(matrix):
    cells = {}
    for c in matrix["matrix"]:
        key = (c["from"], c["to"], c["protocol"], c.get("port", c.get("icmp_type")))
        cells[key] = {k: c[k] for k in ("flows", "client_packets", "client_bytes", "server_packets", "server_bytes")}
    return cells


class MatrixAgainstTshark(harness.NamespaceCase):
    NAME = "weir-mx"

    def test_matrix_equals_the_analysts(self):
        capture = harness.capture(CAPTURE)
        cfg = os.path.join(self.tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_af_packet0,iface=wa"}], "zones": ZONES,
                       "timeouts": {"idle_s": 2, "tcp_end_s": 1}}, f)
        weir = subprocess.Popen(self.nsexec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-c", cfg,
                                               "--stats-interval", "0", "--management", "127.0.0.1:9471",
                                               "--summary-json", os.path.join(self.tmp, "summary.json")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(harness.stop, weir, signal.SIGKILL)
        time.sleep(3)  # EAL and port start
        self.assertIsNone(weir.poll(), weir.stderr.read() if weir.poll() is not None else "")
        # Paced (32 frames, then 2 ms): af_packet's ring is not a NIC's, and a burst of 1,500 frames
        # from the kernel can outrun it; the test is about the matrix, not about that.
        sender = ("import socket,sys,pickle,time\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('wb',0))\n"
                  "for i,f in enumerate(pickle.load(sys.stdin.buffer)):\n"
                  "    s.send(f)\n"
                  "    if i % 32 == 31: time.sleep(0.002)\n")
        frames = pcap_frames(capture)
        subprocess.run(self.nsexec + [sys.executable, "-c", sender], input=pickle.dumps(frames), check=True)
        want = truth_matrix(capture)
        want_records = sum(c["flows"] for c in want.values())

        def get(path):
            p = subprocess.run(self.nsexec + ["curl", "-sS", "--max-time", "10", "http://127.0.0.1:9471" + path],
                               capture_output=True, text=True, check=True)
            return json.loads(p.stdout)

        # Every conversation ends by the idle timeout of wall time (2 s) and reaches the matrix.
        last = [-1, time.time()]

        def settled():  # every record in, or nothing new for 5 s
            n = get("/matrix")["records"]
            if n != last[0]:
                last[:] = [n, time.time()]
            return n >= want_records or time.time() - last[1] > 5
        harness.wait_for(settled, timeout=60, what="the records")
        time.sleep(1)
        m = get("/matrix")
        got = weir_cells(m)
        self.assertEqual(m["zones"], ["other", "gateway", "lan", "microsoft"])
        self.assertFalse(m["policy"])
        if got != want:
            weir.send_signal(signal.SIGTERM)
            weir.communicate(timeout=60)
            with open(os.path.join(self.tmp, "summary.json")) as f:
                s = json.load(f)
            diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
            self.fail(f"sent {len(frames)} frames, weir received {s['rx_packets']} (ports: {s['ports']}); "
                      f"cells that differ (weir, tshark): {diff}")
        # Heaviest first, and n= limits.
        byt = [c["bytes"] for c in m["matrix"]]
        self.assertEqual(byt, sorted(byt, reverse=True))
        self.assertEqual(len(get("/matrix?n=3")["matrix"]), 3)
        status = get("/status")
        self.assertEqual(status["matrix"]["records"], want_records)
        self.assertEqual(status["matrix"]["zones"], 3)
        metrics = subprocess.run(self.nsexec + ["curl", "-sS", "http://127.0.0.1:9471/metrics"], capture_output=True,
                                 text=True, check=True).stdout
        lan_ms = sum(v["flows"] for k, v in want.items() if k[:2] == ("lan", "microsoft"))
        self.assertIn(f'weir_zone_flows_total{{from="lan",to="microsoft"}} {lan_ms}', metrics)
        self.assertIn(f"weir_matrix_records_total {want_records}", metrics)
        weir.send_signal(signal.SIGTERM)
        _, err = weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0, err)


def crafted_capture(path):
    """users (10.1.0.0/16) talk HTTPS to servers (10.2.0.0/24), as allowed; one user polls SNMP on
    two management addresses (10.2.0.250/31) three times and tries SSH on one, which the policy
    does not allow."""
    def frame(src, dst, proto, sport, dport, flags=0, payload=b""):
        if proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0) + payload
        else:
            l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                         ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
        ip = ip[:10] + struct.pack("!H", harness.ip_checksum(ip)) + ip[12:]
        return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + l4

    t = 1_700_000_000.0
    pkts = []
    for i in range(20):  # allowed: HTTPS handshakes and data
        c, s, sp = f"10.1.0.{10 + i % 5}", "10.2.0.7", 50000 + i
        pkts += [(t, frame(c, s, 6, sp, 443, 0x02)), (t + 0.001, frame(s, c, 6, 443, sp, 0x12)),
                 (t + 0.002, frame(c, s, 6, sp, 443, 0x10)), (t + 0.003, frame(c, s, 6, sp, 443, 0x18, b"x" * 100))]
        t += 0.1
    for i in range(3):  # not allowed: SNMP from a user to management, two devices
        for dev in ("10.2.0.250", "10.2.0.251"):
            pkts += [(t, frame("10.1.0.99", dev, 17, 40000 + i, 161, payload=b"\x30" * 40)),
                     (t + 0.002, frame(dev, "10.1.0.99", 17, 161, 40000 + i, payload=b"\x30" * 60))]
            t += 0.5
    pkts.append((t, frame("10.1.0.99", "10.2.0.250", 6, 40100, 22, 0x02)))  # and SSH to one of them
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in pkts:
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(fr), len(fr)) + fr)
    return len(pkts)


class Policy(unittest.TestCase):
    def test_violation_raises_exactly_one_event(self):
        tmp = harness.scratch(self, "weir-policy-")
        capture = os.path.join(tmp, "snmp.pcap")
        crafted_capture(capture)
        cfg = os.path.join(tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_pcap0,rx_pcap=" + capture}],
                       "zones": {"users": ["10.1.0.0/16"], "servers": ["10.2.0.0/24"], "mgmt": ["10.2.0.250/31"]},
                       "policy": {"allow": [{"from": "users", "to": "servers", "proto": "tcp", "ports": [443]},
                                            {"from": "mgmt", "to": "any", "proto": "udp", "ports": ["161-162"]}]}}, f)
        events = os.path.join(tmp, "events.jsonl")
        summary = os.path.join(tmp, "summary.json")
        rows = os.path.join(tmp, "flows.jsonl")
        p = harness.run_weir(["-c", cfg, "--events", "file://" + events, "--summary-json", summary,
                              "--export", "jsonl=file://" + rows])
        with open(rows) as f:
            zoned = collections.Counter((r["src_zone"], r["dst_zone"], r["dport"]) for r in map(json.loads, f))
        self.assertEqual(zoned, {("users", "servers", 443): 20,
                                 **{("servers", "users", 50000 + i): 1 for i in range(20)},
                                 ("users", "mgmt", 161): 6, **{("mgmt", "users", 40000 + i): 2 for i in range(3)},
                                 ("users", "mgmt", 22): 1})
        with open(events) as f:
            ev = [json.loads(line) for line in f]
        starts = [e for e in ev if e["phase"] == "start"]
        self.assertEqual([(e["kind"], e["attacker"]) for e in starts], [("out_of_policy", "10.1.0.99")],
                         json.dumps(ev, indent=1))
        end = [e for e in ev if e["phase"] == "end"]
        self.assertEqual(len(end), 1)
        self.assertEqual(end[0]["id"], starts[0]["id"])
        self.assertEqual(end[0]["victim"], "many")
        self.assertEqual(sorted(end[0]["evidence"]["sample_servers"]), ["10.2.0.250", "10.2.0.251"])
        self.assertEqual(end[0]["evidence"]["from_zone"], "users")
        self.assertEqual(end[0]["evidence"]["to_zone"], "mgmt")
        self.assertEqual(sorted(end[0]["evidence"]["sample_services"]), ["tcp/22", "udp/161"])
        self.assertNotIn("port", end[0])  # several services
        self.assertEqual(end[0]["counts"]["flows"], 7)
        self.assertEqual(end[0]["counts"]["packets"], 13)
        self.assertIn("event start #1 out_of_policy: attacker 10.1.0.99 victim 10.2.0.25", p.stderr)
        with open(summary) as f:
            s = json.load(f)
        self.assertEqual(s["matrix"]["violations"], 7)
        self.assertEqual(s["matrix"]["records"], 27)
        self.assertEqual(s["detect"]["events"]["out_of_policy"], 1)

    def test_zones_change_only_with_a_restart(self):
        tmp = harness.scratch(self, "weir-policy-")
        capture = os.path.join(tmp, "snmp.pcap")
        crafted_capture(capture)
        cfg = os.path.join(tmp, "weir.json")
        base = {"zones": {"users": ["10.1.0.0/16"]}}  # the capture comes from -r
        with open(cfg, "w") as f:
            json.dump(base, f)
        weir = HeldReplay(capture, ["-c", cfg])
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        weir.wait_finished()
        code, body = http(weir.base + "/matrix")
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["zones"], ["other", "users"])
        code, body = http(weir.base + "/matrix?n=0")
        self.assertEqual(code, 400, body)
        self.assertIn('n: expected 1..1000000, got \\"0\\"', body)
        with open(cfg, "w") as f:
            json.dump(dict(base, zones={"users": ["10.1.0.0/16"], "mgmt": ["10.2.0.250/31"]},
                           policy={"allow": []}), f)
        code, body = http(weir.base + "/reload", data=b"")
        r = json.loads(body)
        self.assertEqual(code, 400, body)
        self.assertFalse(r["ok"])
        self.assertTrue(any(e.startswith("zones:") for e in r["errors"]), r["errors"])
        self.assertTrue(any(e.startswith("policy:") for e in r["errors"]), r["errors"])
        self.assertEqual(json.loads(http(weir.base + "/matrix")[1])["zones"], ["other", "users"])
        rc, _, err = weir.stop()
        self.assertEqual(rc, 0, err)

    def test_configuration_errors_name_the_field(self):
        tmp = harness.scratch(self, "weir-policy-")
        cfg = os.path.join(tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_null0"}], "zones": {"users": ["10.1.0.1/16"]},
                       "policy": {"allow": [{"from": "user", "to": "any"}]}}, f)
        p = harness.run_weir(["-c", cfg, "--check"], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("zones.users[0]: \"10.1.0.1/16\" has bits set past its length (did you mean 10.1.0.0/16?)",
                      p.stderr)
        self.assertIn("policy.allow[0].from: no zone named \"user\"", p.stderr)
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_null0"}], "zones": {"users": ["10.1.0.0/16"]},
                       "policy": {"allow": []}}, f)
        p = harness.run_weir(["-c", cfg, "--check", "--no-detect"], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("policy: out_of_policy events are detection events", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
