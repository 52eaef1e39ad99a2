#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""TLS and basic authentication of the management listeners from a web configuration in the
format Prometheus exporters use (tls_server_config, basic_auth_users with bcrypt hashes):
certificates made with the openssl tool, hashes with libcrypt's bcrypt, requests with curl,
and a real Prometheus server scraping weir over TLS with a user and password."""
import json
import os
import signal
import socket
import subprocess
import sys
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_operate import HeldReplay, free_tcp_port, http  # noqa: E402

CAPTURE = "ipfixprobe__mixed.pcap"
PASSWORD = "s3cret scrape"


def bcrypt(password):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
    client certificate signed by nobody the server knows."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=weir test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
                f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "2",
            "-subj", "/CN=rogue", cwd=d)


def curl(url, *args):
    """(HTTP status or 0 when there was no HTTP answer, curl's exit status)."""
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_code}", url] + list(args),
                       capture_output=True, text=True)
    return int(p.stdout or 0), p.returncode


class WebConfig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.tempfile.mkdtemp(prefix="weir-web-")
        make_pki(cls.tmp)
        cls.hash = bcrypt(PASSWORD)

    @classmethod
    def tearDownClass(cls):
        harness.shutil.rmtree(cls.tmp, True)

    def web(self, text):
        path = os.path.join(self.tmp, f"web-{self.id().split('.')[-1]}.yml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def held(self, web, metrics=True):
        self.metrics_port = free_tcp_port()
        extra = ["--web-config", web] + (["--metrics", f"127.0.0.1:{self.metrics_port}"] if metrics else [])
        weir = HeldReplay(harness.capture(CAPTURE), extra)
        self.addCleanup(lambda: weir.proc.poll() is None and weir.proc.kill())
        base = f"https://127.0.0.1:{weir.mport}"

        def up():
            if weir.proc.poll() is not None:
                raise AssertionError(weir.proc.stderr.read())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", weir.mport)) == 0
        harness.wait_for(up, timeout=60, what="weir's TLS listener")
        return weir, base

    def test_tls_and_basic_auth_on_both_listeners(self):
        # Relative file names are relative to the web configuration's folder, as for the exporters.
        web = self.web("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                       f"basic_auth_users:\n  prometheus: '{self.hash}'\n")
        weir, base = self.held(web)
        ca = ["--cacert", os.path.join(self.tmp, "ca.crt")]
        good = ["-u", f"prometheus:{PASSWORD}"]
        for url in (base, f"https://127.0.0.1:{self.metrics_port}"):
            self.assertEqual(curl(url + "/metrics", *ca)[0], 401, "no credentials")
            self.assertEqual(curl(url + "/metrics", *ca, "-u", "prometheus:guess")[0], 401, "a wrong password")
            self.assertEqual(curl(url + "/metrics", *ca, "-u", f"nobody:{PASSWORD}")[0], 401, "an unknown user")
            self.assertEqual(curl(url + "/metrics", *ca, *good)[0], 200)
            self.assertEqual(curl(url + "/healthz", *ca, *good)[0], 200)
            self.assertEqual(curl(url + "/metrics", *good)[1], 60, "curl refuses a server whose CA it was not given")
            self.assertEqual(curl(url.replace("https", "http") + "/metrics", *good)[0], 0, "no plain HTTP")
        self.assertEqual(curl(base + "/status", *ca, *good)[0], 200)
        self.assertEqual(curl(base + "/reload", *ca, "-X", "POST")[0], 401)
        self.assertEqual(curl(f"https://127.0.0.1:{self.metrics_port}/status", *ca, *good)[0], 404,
                         "the metrics listener serves metrics only")
        # The HTTP server behind the TLS relay listens on loopback, for the relay alone.
        inner = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout.splitlines()
        ports = [l.split()[3] for l in inner if f"pid={weir.proc.pid}," in l]
        hidden = [p for p in ports if not p.endswith((f":{weir.mport}", f":{self.metrics_port}"))]
        self.assertEqual(len(hidden), 2, ports)
        for p in hidden:
            self.assertTrue(p.startswith("127.0.0.1:"), p)
            self.assertEqual(curl(f"http://{p}/metrics", *good)[0], 403, "not through the relay")
        code, out, err = weir.stop()
        self.assertEqual(code, 0, err)
        self.assertIn(f"metrics and status on {base}/", err)
        self.assertIn("basic auth", err)

    def test_client_certificates(self):
        web = self.web("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                       "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                       "  min_version: TLS13\n")
        weir, base = self.held(web, metrics=False)
        ca = ["--cacert", os.path.join(self.tmp, "ca.crt")]

        def cert(name):
            return ["--cert", os.path.join(self.tmp, f"{name}.crt"), "--key", os.path.join(self.tmp, f"{name}.key")]
        self.assertEqual(curl(base + "/metrics", *ca, *cert("client"))[0], 200)
        self.assertEqual(curl(base + "/metrics", *ca)[0], 0, "no client certificate: no HTTP at all")
        self.assertEqual(curl(base + "/metrics", *ca, *cert("rogue"))[0], 0, "a certificate of another CA")
        self.assertEqual(curl(base + "/metrics", *ca, *cert("client"), "--tls-max", "1.2")[0], 0, "TLS 1.2 < min")
        self.assertEqual(weir.stop()[0], 0)

    def test_bad_files_are_named(self):
        cases = [
            ("tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file: required"),
            ("tls_server_config:\n  cert_file: nosuch.crt\n  key_file: server.key\n",
             "tls_server_config.cert_file: cannot read " + os.path.join(self.tmp, "nosuch.crt")),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
             "tls_server_config.key_file: " + os.path.join(self.tmp, "client.key") + " is not the key of"),
            ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice: expected a bcrypt hash"),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Maybe\n",
             "tls_server_config.client_auth_type: expected NoClientCert"),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
             "  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file: required"),
            ("tls_config:\n  cert_file: server.crt\n", "tls_config: unknown key"),
            ("basic_auth_users: [a\n", "not YAML: line"),
        ]
        for text, want in cases:
            path = self.web(text)
            p = harness.run_weir(["-r", harness.capture(CAPTURE), "--web-config", path, "--check"], check=False)
            self.assertEqual(p.returncode, 2, (text, p.stderr))
            self.assertIn(f"management.web_config: {path}: {want}", p.stderr, text)

    def test_prometheus_scrapes_over_tls_with_a_password(self):
        web = self.web("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                       f"basic_auth_users:\n  prometheus: '{self.hash}'\n"
                       "http_server_config:\n  http2: false\n")
        weir, base = self.held(web)
        tmp = harness.scratch(self, "weir-prom-tls-")
        pport = free_tcp_port()
        pw = os.path.join(tmp, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD)
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s}\nscrape_configs:\n"
                    f"  - job_name: weir\n    scheme: https\n"
                    f"    tls_config: {{ca_file: '{os.path.join(self.tmp, 'ca.crt')}'}}\n"
                    f"    basic_auth: {{username: prometheus, password_file: '{pw}'}}\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{self.metrics_port}']}}]\n"
                    f"  - job_name: nopassword\n    scheme: https\n"
                    f"    tls_config: {{ca_file: '{os.path.join(self.tmp, 'ca.crt')}'}}\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{self.metrics_port}']}}]\n")
        prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{pport}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness.stop, prom, signal.SIGKILL)
        api = f"http://127.0.0.1:{pport}/api/v1"

        def scraped():
            try:
                code, body = http(api + "/query?query=up", timeout=2)
            except OSError:
                return False
            res = {r["metric"]["job"]: r["value"][1] for r in json.loads(body)["data"]["result"]} if code == 200 else {}
            return len(res) == 2 and res
        harness.wait_for(scraped, timeout=60, what="prometheus to scrape both jobs")
        up = {r["metric"]["job"]: r["value"][1] for r in json.loads(http(api + "/query?query=up")[1])["data"]["result"]}
        self.assertEqual(up, {"weir": "1", "nopassword": "0"})
        code, body = http(api + "/query?query=weir_worker_packets_total")
        self.assertTrue(json.loads(body)["data"]["result"], "weir's metrics came through")
        code, out, err = weir.stop()
        self.assertEqual(code, 0, err)
        self.assertIn("http_server_config.http2 (weir answers HTTP/1.1) has no effect in weir", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
