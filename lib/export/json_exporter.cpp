// SPDX-License-Identifier: BSD-3-Clause
// JSON lines (file or TCP) and ClickHouse (HTTP INSERT ... FORMAT JSONEachRow) exporters.
// One object per record: per direction (uniflow) or per conversation with rev_* fields
// (biflow). ClickHouse batches are posted by a sender thread of the exporter's own, behind a
// bounded queue: a slow or down server costs counted drops, never a stalled control thread.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <zlib.h>

#include <atomic>
#include <charconv>
#include <string_view>
#include <cctype>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "export/exporter.h"
#include "export/transport.h"
#include "inspect/names.h"
#include "inspect/rules.h"

namespace weir::exporter {
namespace {

// Dotted quad without printf (glibc's inet_ntop formats IPv4 with sprintf).
size_t ipv4(char* out, const uint8_t* a) {
    char* p = out;
    for (int i = 0; i < 4; ++i) {
        if (i) *p++ = '.';
        p = std::to_chars(p, p + 3, a[i]).ptr;
    }
    return static_cast<size_t>(p - out);
}

std::string addr_of(uint8_t version, const uint8_t* a) {
    char buf[INET6_ADDRSTRLEN];
    if (version == 4) return std::string(buf, ipv4(buf, a));
    if (version != 6) return "";
    inet_ntop(AF_INET6, a, buf, sizeof(buf));
    return buf;
}

std::string addr(const packet::Tuple& t, const uint8_t* a) { return addr_of(t.ip_version == 6 ? 6 : 4, a); }

std::string mac(const uint8_t* m) {
    char buf[18];
    snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

// Appends a key (given with its quotes, comma and colon) and an unsigned number: the rows are
// mostly numbers, and to_chars is several times faster than printf's formatting.
void num(std::string& out, std::string_view key, uint64_t v) {
    char b[24];
    const auto r = std::to_chars(b, b + sizeof(b), v);
    out.append(key);
    out.append(b, static_cast<size_t>(r.ptr - b));
}

// `digits` decimal digits of v, zero-padded.
void padded(std::string& out, uint64_t v, int digits) {
    char b[20];
    for (int i = digits - 1; i >= 0; --i, v /= 10) b[i] = static_cast<char>('0' + v % 10);
    out.append(b, static_cast<size_t>(digits));
}

// RFC 3339 UTC with the exporter's precision. The date and time of day are formatted once per
// second of flow time (records of one batch mostly share it).
void rfc3339(std::string& out, uint64_t ns, config::TimeUnit unit) {
    thread_local time_t last = -1;
    thread_local char day[32];
    thread_local size_t day_len = 0;
    const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
    if (secs != last) {
        tm utc;
        gmtime_r(&secs, &utc);
        day_len = strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &utc);
        last = secs;
    }
    out.append(day, day_len);
    out += '.';
    const uint64_t sub = ns % 1'000'000'000;
    if (unit == config::TimeUnit::kNs)
        padded(out, sub, 9);
    else if (unit == config::TimeUnit::kUs)
        padded(out, sub / 1000, 6);
    else
        padded(out, sub / 1'000'000, 3);
    out += 'Z';
}

// A JSON string literal of arbitrary bytes (names come off the wire).
void quoted(std::string& out, const char* p, size_t n) {
    out += '"';
    for (size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7F) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", c);
            out += e;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

// What payload inspection found: the application, the server name the client asked for (TLS SNI
// or HTTP Host) and the rules that tagged the flow; empty when nothing (or inspection is off).
void inspection(std::string& out, const flow::FlowRecord& r) {
    const flow::Findings* f = r.inspection();
    const auto& reg = inspect::Registry::instance();
    const std::string app = f ? reg.app_name(f->app) : std::string();
    out += ",\"application\":";
    quoted(out, app.data(), app.size());
    const auto kind = f ? static_cast<inspect::NameKind>(f->name_kind) : inspect::NameKind::kNone;
    out += ",\"tls_server_name\":";
    quoted(out, f ? f->name : "", kind == inspect::NameKind::kTlsSni ? f->name_len : 0);
    out += ",\"http_host\":";
    quoted(out, f ? f->name : "", kind == inspect::NameKind::kHttpHost ? f->name_len : 0);
    std::string ids, tags;
    const unsigned kept = f ? (f->nrules < 8 ? f->nrules : 8) : 0;
    for (unsigned i = 0; i < kept; ++i) {
        const inspect::RuleInfo* ri = reg.rule_info(f->rules[i]);
        if (!ri) continue;
        if (!ids.empty()) ids += ',';
        ids += std::to_string(ri->id);
        if (!tags.empty()) tags += ',';
        quoted(tags, ri->tag.data(), ri->tag.size());
    }
    out += ",\"rule_ids\":[" + ids + "],\"tags\":[" + tags + "]";
}

// The opt-in fields: MPLS label, flowDirection, handshake times, size histogram(s).
void extras(std::string& out, const flow::FlowRecord& r, const config::Exporter& ex, bool reverse, bool biflow,
            int direction) {
    if (ex.mpls) {
        const int64_t m = r.mpls_top();
        if (m < 0)
            out += ",\"mpls_label\":null,\"mpls_tc\":null";
        else
            out += ",\"mpls_label\":" + std::to_string(m >> 4) + ",\"mpls_tc\":" + std::to_string(m >> 1 & 7);
    }
    if (ex.direction) {
        out += ",\"flow_direction\":";
        out += direction == 0 ? "\"ingress\"" : direction == 1 ? "\"egress\"" : "null";
    }
    if (ex.rtt) {
        out += ",\"rtt_client_us\":";
        out += r.flags & flow::FlowRecord::kRttClient ? std::to_string(r.fwd.rtt_us) : "null";
        out += ",\"rtt_server_us\":";
        out += r.flags & flow::FlowRecord::kRttServer ? std::to_string(r.rev.rtt_us) : "null";
    }
    if (ex.sizes) {
        auto hist = [&](const char* key, const uint32_t* z) {
            out += key;
            for (uint32_t b = 0; b < flow::kSizeBins; ++b) {
                out += b ? ',' : '[';
                out += std::to_string(z ? z[b] : 0);
            }
            out += ']';
        };
        hist(",\"sizes\":", r.sizes_or_null(reverse ? 1 : 0));
        if (biflow) hist(",\"rev_sizes\":", r.sizes_or_null(1));
    }
}

// Appends one JSON object (no newline). `clickhouse`: start/end as Unix seconds for DateTime.
// `reverse`: the responder's direction of a uniflow pair (tunnel end points and MACs swapped).
void row(std::string& out, const packet::Tuple& t, const flow::DirStats& d, const flow::DirStats* rev,
         const flow::FlowRecord& r, uint32_t domain, const config::Exporter& ex, bool clickhouse, bool reverse,
         uint32_t in_port, const zones::ZoneMap* zm, int direction, const std::string& probe) {
    const config::TimeUnit unit = ex.time_unit;
    const bool icmp = t.proto == 1 || t.proto == 58;
    if (clickhouse) {
        num(out, "{\"start\":", d.first_ns / 1'000'000'000);
        num(out, ",\"end\":", d.last_ns / 1'000'000'000);
    } else {
        out += "{\"start\":\"";
        rfc3339(out, d.first_ns, unit);
        out += "\",\"end\":\"";
        rfc3339(out, d.last_ns, unit);
        out += '"';
    }
    num(out, ",\"start_ms\":", d.first_ns / 1'000'000);
    num(out, ",\"end_ms\":", d.last_ns / 1'000'000);
    out += ",\"src\":\"";
    out += addr(t, t.src);
    out += "\",\"dst\":\"";
    out += addr(t, t.dst);
    out += '"';
    num(out, ",\"sport\":", icmp ? 0u : t.sport);
    num(out, ",\"dport\":", icmp ? 0u : t.dport);
    num(out, ",\"proto\":", t.proto);
    num(out, ",\"icmp_type\":", icmp ? t.dport >> 8 : 0u);
    num(out, ",\"icmp_code\":", icmp ? t.dport & 0xFFu : 0u);
    num(out, ",\"vlan\":", t.vlan);
    num(out, ",\"packets\":", d.packets);
    num(out, ",\"bytes\":", d.octets);
    num(out, ",\"tcp_flags\":", d.tcp_flags);
    num(out, ",\"tos\":", d.tos);
    num(out, ",\"ttl_min\":", d.ttl_min);
    num(out, ",\"ttl_max\":", d.ttl_max);
    if (rev) {
        num(out, ",\"rev_packets\":", rev->packets);
        num(out, ",\"rev_bytes\":", rev->octets);
        num(out, ",\"rev_tcp_flags\":", rev->tcp_flags);
    }
    const uint8_t* tsrc = reverse ? r.rev_tunnel_src() : r.tunnel_src;
    const uint8_t* tdst = reverse ? r.rev_tunnel_dst() : r.tunnel_dst;
    num(out, ",\"cvlan\":", r.cvlan);
    out += ",\"tunnel_type\":\"";
    if (r.tunnel_type) out += packet::tunnel_name(static_cast<packet::TunnelType>(r.tunnel_type));
    out += '"';
    num(out, ",\"tunnel_id\":", r.tunnel_id_or_zero());
    out += ",\"tunnel_src\":\"";
    if (r.tunnel_type) out += addr_of(r.tunnel_ip_version, tsrc);
    out += "\",\"tunnel_dst\":\"";
    if (r.tunnel_type) out += addr_of(r.tunnel_ip_version, tdst);
    out += '"';
    num(out, ",\"tunnel_vlan\":", r.tunnel_vlan_or_zero());
    num(out, ",\"tunnel_depth\":", r.tunnel_depth);
    num(out, ",\"outer_copy\":", r.outer_copy() ? 1u : 0u);
    if (ex.macs) {
        out += ",\"src_mac\":\"" + mac(reverse ? r.dst_mac_or_zero() : r.src_mac_or_zero()) + "\",\"dst_mac\":\"" +
            mac(reverse ? r.src_mac_or_zero() : r.dst_mac_or_zero()) + "\"";
    }
    extras(out, r, ex, reverse, rev != nullptr, direction);
    inspection(out, r);
    if (zm) {
        const std::string& sz = zm->name(zm->lookup(t.src, t.ip_version));
        const std::string& dz = zm->name(zm->lookup(t.dst, t.ip_version));
        out += ",\"src_zone\":";
        quoted(out, sz.data(), sz.size());
        out += ",\"dst_zone\":";
        quoted(out, dz.data(), dz.size());
    }
    num(out, ",\"end_reason\":", r.end_reason);
    num(out, ",\"in_port\":", in_port);
    num(out, ",\"domain\":", domain);
    out += ",\"probe\":";
    quoted(out, probe.data(), probe.size());
    out += '}';
}

// The rows of a batch of conversations; returns records and packets written.
void rows(std::string& out, const flow::FlowRecord* rs, uint32_t n, uint32_t domain, const config::Exporter& ex,
          const std::vector<uint32_t>& ifindex, const std::vector<uint8_t>& directions, bool clickhouse,
          const zones::ZoneMap* zm, const std::string& probe, uint64_t& records, uint64_t& packets) {
    const bool bi = ex.mode == config::Mode::kBiflow;
    for (uint32_t i = 0; i < n; ++i) {
        const auto& r = rs[i];
        const uint32_t in = ipfix::interface_of(r.in_port, ifindex);
        const int dir = r.in_port < directions.size() ? directions[r.in_port] : -1;
        row(out, r.tuple, r.fwd, bi ? &r.rev : nullptr, r, domain, ex, clickhouse, false, in, zm, dir, probe);
        out += '\n';
        ++records;
        if (!bi && r.rev.packets) {
            row(out, r.reverse_tuple(), r.rev, nullptr, r, domain, ex, clickhouse, true, in, zm, dir, probe);
            out += '\n';
            ++records;
        }
        packets += r.packets();
    }
}

class JsonLinesExporter : public Exporter {
public:
    JsonLinesExporter(const config::Exporter& ex, const config::Config& cfg, const ExportContext* ctx)
        : Exporter(ex),
          ex_(ex),
          ifindex_(ctx ? ctx->ifindex : std::vector<uint32_t>{}),
          directions_(ctx ? ctx->direction : std::vector<uint8_t>{}),
          zones_(ctx ? ctx->zones : nullptr),
          probe_(cfg.probe),
          transport_(make_transport(ex, cfg)) {}

    void send_records(const flow::FlowRecord* rs, uint32_t count, uint32_t domain, uint32_t now_s) override {
        std::string out;
        uint64_t records = 0, packets = 0;
        rows(out, rs, count, domain, ex_, ifindex_, directions_, false, zones_.get(), probe_, records, packets);
        transport_->prepare(out.size(), now_s);
        settle(*transport_);
        if (transport_->send(reinterpret_cast<const uint8_t*>(out.data()), out.size(), now_s, records, packets)) {
            stats_.messages.add();
            stats_.bytes.add(out.size());
            stats_.records.add(records);
            stats_.packets.add(packets);
            delivered(true, 0, transport_->take_refused());
        } else {
            stats_.send_errors.add();
            stats_.lost_records.add(records);
            stats_.lost_packets.add(packets);
            delivered(false, transport_->last_errno());
        }
    }
    void tick(uint32_t now_s) override {
        transport_->prepare(0, now_s);
        settle(*transport_);
    }

private:
    config::Exporter ex_;
    std::vector<uint32_t> ifindex_;
    std::vector<uint8_t> directions_;  // flowDirection by DPDK port id (0xFF: none)
    std::shared_ptr<const zones::ZoneMap> zones_;
    std::string probe_;
    std::unique_ptr<Transport> transport_;
};

// Posts batches to ClickHouse's HTTP interface from a thread of its own.
class ClickHouseExporter : public Exporter {
public:
    ClickHouseExporter(const config::Exporter& ex, const config::Config& cfg, const ExportContext* ctx)
        : Exporter(ex),
          ex_(ex),
          ifindex_(ctx ? ctx->ifindex : std::vector<uint32_t>{}),
          directions_(ctx ? ctx->direction : std::vector<uint8_t>{}),
          zones_(ctx ? ctx->zones : nullptr),
          probe_(cfg.probe) {
        static std::once_flag curl_once;
        std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        const std::string host = ex.host.find(':') != std::string::npos ? "[" + ex.host + "]" : ex.host;
        insert_url_ = std::string(config::scheme_name(ex.scheme)) + "://" + host + ":" + std::to_string(ex.port) +
            "/?query=" + url_encode("INSERT INTO " + ex.table + " FORMAT JSONEachRow");
        sender_ = std::thread([this] { run(); });
    }
    ~ClickHouseExporter() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
            give_up_ = true;
        }
        cv_.notify_all();
        sender_.join();
    }

    void send_records(const flow::FlowRecord* rs, uint32_t count, uint32_t domain, uint32_t now_s) override {
        if (pending_.body.empty()) pending_since_ = now_s;
        rows(pending_.body, rs, count, domain, ex_, ifindex_, directions_, true, zones_.get(), probe_, pending_.records,
             pending_.packets);
        if (pending_.records >= ex_.batch_rows) hand_over();
    }
    void tick(uint32_t now_s) override {
        if (!pending_.body.empty() && now_s - pending_since_ >= ex_.flush_s) hand_over();
        sync();
    }
    void finish(uint32_t) override {
        hand_over();
        // Give the server up to 30 s to take what is queued; what is left is counted lost.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(30), [this] { return queue_.empty() && !busy_; });
        give_up_ = true;  // a batch still being retried ends now, counted lost
        for (const Batch& b : queue_) {
            lost_records_ += b.records;
            lost_packets_ += b.packets;
        }
        queue_.clear();
        cv_.notify_all();
        cv_.wait(lock, [this] { return !busy_; });
        lock.unlock();
        sync();
    }

private:
    struct Batch {
        std::string body;
        uint64_t records = 0, packets = 0;
    };
    static std::string one_line(const std::string& s, size_t max) {
        std::string out = s.substr(0, max);
        for (char& ch : out)
            if (ch == '\n' || ch == '\r') ch = ' ';
        while (!out.empty() && out.back() == ' ') out.pop_back();
        return out;
    }
    static std::string url_encode(const std::string& s) {
        std::string o;
        for (unsigned char c : s) {
            if (isalnum(c) || c == '.' || c == '_' || c == '-')
                o += static_cast<char>(c);
            else {
                char b[4];
                snprintf(b, sizeof(b), "%%%02X", c);
                o += b;
            }
        }
        return o;
    }
    void hand_over() {
        if (pending_.body.empty()) return;
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.size() >= ex_.queue_batches) {
            queued_drop_records_ += pending_.records;  // the server does not keep up: drop, count
            queued_drop_packets_ += pending_.packets;
        } else {
            queue_.push_back(std::move(pending_));
            cv_.notify_all();
        }
        pending_ = Batch{};
    }
    // Control-thread copy of what the sender thread counted (one writer per counter).
    void sync() {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.records.set(sent_records_);
        stats_.packets.set(sent_packets_);
        stats_.messages.set(sent_batches_);
        stats_.bytes.set(sent_bytes_);
        stats_.send_errors.set(errors_);
        stats_.retries.set(retries_);
        stats_.queued.set(queue_.size() + (busy_ ? 1 : 0));
        stats_.lost_records.set(lost_records_ + queued_drop_records_);
        stats_.lost_packets.set(lost_packets_ + queued_drop_packets_);
    }
    // One POST; returns the HTTP status (0 when the server could not be reached).
    // One INSERT over HTTP(S) with libcurl on a kept-alive connection; returns the HTTP status,
    // or 0 with post_error_ saying why there was none. The body goes gzip-compressed unless the
    // exporter says otherwise.
    int post(CURL* c, const std::string& body, std::string& reply) {
        reply.clear();
        const std::string* payload = &body;
        std::string packed;
        if (ex_.compress) {
            if (!gzip(body, packed)) {
                post_error_ = "cannot compress the batch";
                return 0;
            }
            payload = &packed;
        }
        curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/x-ndjson");
        if (ex_.compress) headers = curl_slist_append(headers, "Content-Encoding: gzip");
        curl_easy_setopt(c, CURLOPT_URL, insert_url_.c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload->data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload->size()));
        curl_easy_setopt(
            c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t sz, size_t n, void* out) {
                static_cast<std::string*>(out)->append(p, sz * n);
                return sz * n;
            });
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
        const CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(headers);
        if (rc != CURLE_OK) {
            post_error_ = curl_easy_strerror(rc);
            // Before the request went out nothing can have been inserted: safe to send again.
            sent_any_ =
                !(rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY);
            return 0;
        }
        sent_any_ = true;
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        return static_cast<int>(status);
    }
    static bool gzip(const std::string& in, std::string& out) {
        z_stream z{};
        if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
        out.resize(deflateBound(&z, in.size()) + 32);
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z.avail_in = static_cast<uInt>(in.size());
        z.next_out = reinterpret_cast<Bytef*>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        const int rc = deflate(&z, Z_FINISH);
        out.resize(z.total_out);
        deflateEnd(&z);
        return rc == Z_STREAM_END;
    }
    // The handle of the sender thread: connection reuse, timeouts, credentials, TLS.
    CURL* make_handle() const {
        CURL* c = curl_easy_init();
        if (!c) return nullptr;
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        if (!ex_.user.empty()) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, ex_.user.c_str());
            curl_easy_setopt(c, CURLOPT_PASSWORD, ex_.password.c_str());
        }
        if (!ex_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ex_.ca_file.c_str());
        return c;
    }
    void run() {
        CURL* c = make_handle();
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) {  // stop, nothing left
                if (c) curl_easy_cleanup(c);
                return;
            }
            Batch b = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            lock.unlock();
            int status = 0;
            std::string reply;
            // A server that cannot be reached (stopped, restarting: nothing was inserted) is
            // tried again with backoff until it answers or weir stops, while later batches wait
            // in the bounded queue; a server that answers with an error gets three tries (a
            // 4xx one only), since a batch is one block: all of it went in, or none.
            for (int attempt = 0;; ++attempt) {
                status = c ? post(c, b.body, reply) : 0;
                if (!c) post_error_ = "cannot create an HTTP client";
                if (status == 200) break;
                std::unique_lock<std::mutex> g(mu_);
                ++errors_;
                const bool unreachable = status == 0 && c && !sent_any_;
                if (status >= 400 && status < 500) break;  // the server refuses this data: retrying will not help
                if (!unreachable && attempt >= 2) break;
                if (give_up_) break;
                ++retries_;
                sender_failures_.failed(status ? "insert answered HTTP " + std::to_string(status) + ": " +
                                                one_line(reply, 200)
                                               : post_error_);
                const auto backoff = std::chrono::milliseconds(std::min(10000, 500 << std::min(attempt, 5)));
                cv_.wait_for(g, backoff, [this] { return give_up_; });
            }
            lock.lock();
            busy_ = false;
            if (status == 200) {
                sent_records_ += b.records;
                sent_packets_ += b.packets;
                sent_bytes_ += b.body.size();
                ++sent_batches_;
            } else {
                lost_records_ += b.records;
                lost_packets_ += b.packets;
            }
            if (status == 200)
                sender_failures_.ok();
            else
                sender_failures_.failed(status ? "insert answered HTTP " + std::to_string(status) + ": " +
                                                one_line(reply, 200)
                                               : post_error_);
            cv_.notify_all();
        }
    }

    config::Exporter ex_;
    std::vector<uint32_t> ifindex_;
    std::vector<uint8_t> directions_;  // flowDirection by DPDK port id (0xFF: none)
    std::shared_ptr<const zones::ZoneMap> zones_;
    std::string probe_;
    std::string insert_url_;  // the INSERT's full URL
    Batch pending_;           // control thread only
    uint32_t pending_since_ = 0;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    bool stop_ = false, busy_ = false, give_up_ = false;
    bool sent_any_ = false;  // the last post() reached the server (sender thread)
    FailureLog sender_failures_{"exporter clickhouse " + url_, std::chrono::seconds(60),
                                "batches are retried while the server cannot be reached, up to queue_batches "
                                "waiting; a batch the server refuses is counted lost"};  // the sender thread's own
    std::string post_error_;  // why the last post() got no answer (sender thread)
    uint64_t sent_records_ = 0, sent_packets_ = 0, sent_bytes_ = 0, sent_batches_ = 0, errors_ = 0, retries_ = 0;
    uint64_t lost_records_ = 0, lost_packets_ = 0, queued_drop_records_ = 0, queued_drop_packets_ = 0;
    std::thread sender_;
};

}  // namespace

void json_rows(std::string& out, const flow::FlowRecord* rs, uint32_t n, uint32_t domain, const config::Exporter& ex,
               const ExportContext* ctx, const std::string& probe, bool clickhouse, uint64_t& records,
               uint64_t& packets) {
    static const std::vector<uint32_t> no_ifindex;
    static const std::vector<uint8_t> no_direction;
    rows(out, rs, n, domain, ex, ctx ? ctx->ifindex : no_ifindex, ctx ? ctx->direction : no_direction, clickhouse,
         ctx ? ctx->zones.get() : nullptr, probe, records, packets);
}

std::unique_ptr<Exporter> make_json_exporter(const config::Exporter& ex, const config::Config& cfg,
                                             std::shared_ptr<const ExportContext> ctx) {
    if (ex.format == config::Format::kClickhouse) return std::make_unique<ClickHouseExporter>(ex, cfg, ctx.get());
    return std::make_unique<JsonLinesExporter>(ex, cfg, ctx.get());
}

}  // namespace weir::exporter
