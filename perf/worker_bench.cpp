// SPDX-License-Identifier: BSD-3-Clause
// Worker pipeline benchmark: synthetic traffic built into mbufs from a mempool (EAL --no-huge),
// fed burst by burst to the same Worker::process_burst / housekeeping the PMD loop runs, or
// (--mode pmd) received through a real net_ring port first, to show the PMD's share.
//
// Prints one line per scenario:
//   scenario=NAME flows=N pkt_bytes=B mpps=X cycles_per_pkt=Y new_flows_per_s=Z bytes_per_flow=W ...
// Cycles are TSC cycles spent in the pipeline only (rx + decode + table + expiry + encode);
// rewriting the synthetic headers between bursts (what the NIC's DMA would do) is not counted.
#include <getopt.h>
#include <pthread.h>
#include <sched.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <chrono>
#include <thread>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "detect/detector.h"
#include "export/exporter.h"
#include "udp_sink.h"
#include "worker/worker.h"

namespace {

struct Scenario {
    std::string name;
    uint32_t flows;         // distinct conversations in the population
    bool zipf = false;      // popularity: uniform or Zipf (s = 1)
    int family = 4;         // 4, 6, or 46 for half and half
    bool vlan = false;      // half the packets carry an 802.1Q tag
    bool imix = false;      // 7:4:1 of 64/594/1518-byte frames; else 64 B (IPv4) / 78 B (IPv6)
    bool synflood = false;  // every packet a new flow, table full and evicting
    bool churn = false;     // steady expiry: the population slides, flows end at a fixed rate
    bool vxlan = false;     // every packet a 64-byte tenant frame inside VXLAN, keyed in mode "both"
    bool inspect = false;   // payload inspection with 1,000 generated rules (500 literals, 500 regexes)
};

// 1,000 rules that ordinary text does not match: half literals, half regular expressions, some
// caseless, some scoped to a port.
std::vector<weir::inspect::RuleSpec> bench_rules() {
    std::mt19937_64 rng(7);
    auto word = [&](int n) {
        std::string w;
        for (int i = 0; i < n; ++i) w += static_cast<char>('a' + rng() % 26);
        return w;
    };
    std::vector<weir::inspect::RuleSpec> v;
    for (uint32_t i = 0; i < 1000; ++i) {
        weir::inspect::RuleSpec r;
        r.id = 10'000 + i;
        r.name = "bench " + std::to_string(i);
        if (i % 2 == 0)
            r.pattern = word(8 + static_cast<int>(rng() % 5));
        else
            r.pattern = word(5) + "[0-9]{2,4}[a-z]*" + word(4) + (i % 3 ? "" : "\\s+" + word(3));
        if (i % 5 == 0) r.flags = 1;  // HS_FLAG_CASELESS
        if (i % 7 == 0) r.ports = {443};
        if (i % 4 == 0)
            r.app = "app" + std::to_string(i % 40);
        else
            r.tag = "tag" + std::to_string(i);
        v.push_back(std::move(r));
    }
    return v;
}

struct Options {
    std::string only;
    bool pmd = false;
    uint32_t workers = 1;
    uint64_t packets = 20'000'000;  // timed packets per worker (at least 2 x flows)
    bool no_handoff = false;        // tunneled packets stay where they arrive (as with innermost-header RSS)
    bool detect = false;            // detection on (default configuration), its control side merging untimed
    bool extras = false;            // the opt-in record parts: MACs and MPLS label, handshake times, size bins
    std::string export_to;          // end to end: ipfix_udp, ipfix_file or jsonl_file on a control thread of its own
};

// End to end (--export): a control thread, as weir's, takes every worker's record batches off
// its ring while the workers run, hands them to a real exporter (IPFIX to a UDP sink bound on
// 127.0.0.1, or to a file), and gives the buffers back. A control side that does not keep up
// shows as records the workers dropped at a full ring.
struct ExportSide {
    std::unique_ptr<weir::exporter::Exporter> exporter;
    std::vector<std::atomic<weir::Worker*>> workers;
    std::vector<std::atomic<bool>> finished, drained;  // a worker stopped; its ring is empty since
    std::atomic<bool> stop{false};
    uint64_t batches = 0;
    std::chrono::steady_clock::time_point first{}, last{};  // the first batch taken, the last sent
    explicit ExportSide(uint32_t n) : workers(n), finished(n), drained(n) {}
    void run() {
        auto last_tick = std::chrono::steady_clock::now();
        for (;;) {
            unsigned moved = 0;
            bool all = true;
            for (size_t i = 0; i < workers.size(); ++i) {
                weir::Worker* w = workers[i].load();
                if (!w || drained[i].load()) {
                    all = all && drained[i].load();
                    continue;
                }
                const bool fin = finished[i].load();
                void* bufs[64];
                const unsigned n = rte_ring_sc_dequeue_burst(w->full_ring(), bufs, 64, nullptr);
                const uint32_t now_s = static_cast<uint32_t>(std::time(nullptr));
                for (unsigned k = 0; k < n; ++k) {
                    auto* b = static_cast<weir::RecordBatch*>(bufs[k]);
                    exporter->send_records(b->records, b->count, b->domain, now_s);
                }
                if (n) {
                    exporter->flush(now_s);
                    rte_ring_sp_enqueue_burst(w->free_ring(), bufs, n, nullptr);
                    last = std::chrono::steady_clock::now();
                    if (first == std::chrono::steady_clock::time_point{}) first = last;
                }
                batches += n;
                moved += n;
                if (fin && n == 0) drained[i] = true;
                all = false;
            }
            const auto t = std::chrono::steady_clock::now();
            if (t - last_tick > std::chrono::milliseconds(100)) {
                exporter->tick(static_cast<uint32_t>(std::time(nullptr)));
                last_tick = t;
            }
            if (all) break;
            if (!moved) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        exporter->finish(static_cast<uint32_t>(std::time(nullptr)));
    }
};
ExportSide* g_export = nullptr;

// Hand-off between the workers of one run: each worker's inbound ring, and how many have finished.
struct Mesh {
    std::vector<rte_ring*> inbound;
    std::atomic<uint32_t> stopped{0};
};

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRing = 8192;  // mbufs in rotation, as in a NIC RX ring

// Flow i's addresses and ports. Every flow talks to one of 64k servers; half the packets go
// server -> client so both directions are exercised.
struct TupleGen {
    static void write(uint8_t* frame, uint32_t idx, bool reverse, bool v6, bool vlan, uint16_t ip_len, bool syn) {
        uint8_t* p = frame + 12;
        if (vlan) {
            p[0] = 0x81, p[1] = 0x00, p[2] = 0x00, p[3] = 0x64;
            p += 4;
        }
        const uint32_t client = 0x0A000000u | (idx >> 4);
        const uint32_t server = 0xC6120000u | (idx & 0xFFFF);
        const uint16_t cport = static_cast<uint16_t>(1024 + (idx & 0xF) * 3000 + (idx >> 28));
        const uint16_t sport = 443;
        uint32_t src = reverse ? server : client, dst = reverse ? client : server;
        uint16_t sp = reverse ? sport : cport, dp = reverse ? cport : sport;
        uint8_t* l4;
        if (!v6) {
            p[0] = 0x08, p[1] = 0x00;
            uint8_t* ip = p + 2;
            ip[0] = 0x45, ip[1] = 0, ip[2] = ip_len >> 8, ip[3] = ip_len & 0xFF;
            ip[6] = 0x40, ip[7] = 0, ip[8] = 64, ip[9] = 6;
            for (int i = 0; i < 4; ++i) ip[12 + i] = src >> (24 - 8 * i), ip[16 + i] = dst >> (24 - 8 * i);
            l4 = ip + 20;
        } else {
            p[0] = 0x86, p[1] = 0xDD;
            uint8_t* ip = p + 2;
            ip[0] = 0x60, ip[4] = (ip_len - 40) >> 8, ip[5] = (ip_len - 40) & 0xFF, ip[6] = 6, ip[7] = 64;
            std::memset(ip + 8, 0, 32);
            ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x0d, ip[11] = 0xb8;  // 2001:db8::/32 on both sides
            ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8;
            for (int i = 0; i < 4; ++i) ip[20 + i] = src >> (24 - 8 * i), ip[36 + i] = dst >> (24 - 8 * i);
            l4 = ip + 40;
        }
        l4[0] = sp >> 8, l4[1] = sp & 0xFF, l4[2] = dp >> 8, l4[3] = dp & 0xFF;
        l4[12] = 0x50;
        l4[13] = syn ? 0x02 : 0x10;
    }
};

// Flow i as a tenant conversation inside VXLAN: a 60-byte inner frame (64 with its FCS) between
// two of 16 VTEPs, VNI 1000 + i % 64, and the outer UDP source port a hash of the inner
// packet, as VTEPs send them (so the two directions of one conversation differ outside).
struct VxlanGen {
    static constexpr uint16_t kInner = 60;
    static constexpr uint16_t kLen = 14 + 20 + 8 + 8 + kInner;
    static void write(uint8_t* frame, uint32_t idx, bool reverse) {
        uint8_t* p = frame + 12;
        p[0] = 0x08, p[1] = 0x00;
        uint8_t* ip = p + 2;
        const uint32_t vtep_c = 0x0AC80000u | ((idx >> 4) & 0xF), vtep_s = 0x0AC90000u | (idx & 0xF);
        const uint32_t src = reverse ? vtep_s : vtep_c, dst = reverse ? vtep_c : vtep_s;
        const uint16_t ip_len = kLen - 14;
        ip[0] = 0x45, ip[1] = 0, ip[2] = ip_len >> 8, ip[3] = ip_len & 0xFF;
        ip[6] = 0x40, ip[7] = 0, ip[8] = 64, ip[9] = 17;
        for (int i = 0; i < 4; ++i) ip[12 + i] = src >> (24 - 8 * i), ip[16 + i] = dst >> (24 - 8 * i);
        uint8_t* udp = ip + 20;
        const uint32_t h = (idx * 2654435761u) ^ (reverse ? 0x5bd1e995u : 0);
        const uint16_t sport = static_cast<uint16_t>(49152 + (h >> 18));
        udp[0] = sport >> 8, udp[1] = sport & 0xFF, udp[2] = 4789 >> 8, udp[3] = 4789 & 0xFF;
        udp[4] = 0, udp[5] = static_cast<uint8_t>(ip_len - 20);
        uint8_t* vx = udp + 8;
        const uint32_t vni = 1000 + idx % 64;
        vx[0] = 0x08, vx[4] = vni >> 16, vx[5] = (vni >> 8) & 0xFF, vx[6] = vni & 0xFF;
        uint8_t* inner = vx + 8;
        std::memset(inner, 0x02, 12);
        TupleGen::write(inner, idx, reverse, false, false, kInner - 14, false);
    }
};

// The order in which flows send packets: precomputed so sampling costs nothing while timed.
std::vector<uint32_t> make_sequence(const Scenario& sc, size_t n, uint64_t seed) {
    std::vector<uint32_t> seq(n);
    std::mt19937_64 rng(seed);
    if (sc.zipf) {
        std::vector<double> cdf(sc.flows);
        double acc = 0;
        for (uint32_t i = 0; i < sc.flows; ++i) cdf[i] = acc += 1.0 / (i + 1);
        std::uniform_real_distribution<double> u(0, acc);
        // Scatter popularity ranks over the index space so hot flows are not neighbours.
        for (auto& x : seq) {
            const uint32_t rank = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
            x = static_cast<uint32_t>((static_cast<uint64_t>(rank) * 2654435761u) % sc.flows);
        }
    } else {
        std::uniform_int_distribution<uint32_t> u(0, sc.flows - 1);
        for (auto& x : seq) x = u(rng);
    }
    return seq;
}

struct Result {
    uint64_t packets = 0, cycles = 0, pmd_cycles = 0, created = 0, records = 0, dropped = 0, handed = 0,
             handoff_dropped = 0, inspected_bytes = 0, inspected_flows = 0, inspect_skipped = 0, detect_events = 0,
             detect_overflow = 0;
    size_t detect_bytes = 0;
    size_t table_bytes = 0;
    uint32_t capacity = 0;
};

struct Run {
    const Scenario* sc;
    const Options* opt;
    uint32_t index;
    rte_mempool* pool;
    Mesh* mesh;
    Result res;
};

uint16_t frame_len(const Scenario& sc, uint64_t i, bool v6) {
    if (sc.vxlan) return VxlanGen::kLen + 4;
    if (sc.imix) {
        const uint32_t r = static_cast<uint32_t>(i * 2654435761u >> 8) % 12;
        return r < 7 ? 64 : r < 11 ? 594 : 1518;
    }
    return v6 ? 78 : 64;
}

int run_worker(void* arg) {
    Run& r = *static_cast<Run*>(arg);
    const Scenario& sc = *r.sc;
    const Options& opt = *r.opt;
    const uint64_t hz = rte_get_tsc_hz();

    weir::WorkerConfig wc;
    wc.index = r.index;
    wc.domain = 1 + r.index;
    wc.buffers = 1024;
    wc.max_delay_cycles = hz / 2;
    wc.replay = false;  // never wait for buffers: drops would be counted and reported
    wc.table.capacity = sc.synflood ? (1u << 20)
        : sc.churn                  ? 4 * sc.flows
                                    : std::max<uint32_t>(1024, sc.flows + sc.flows / 4);
    wc.table.idle_ns = sc.churn ? 1'000'000'000ull : 3600'000'000'000ull;
    wc.table.active_ns = 86400'000'000'000ull;
    weir::packet::DecodeOptions decode;
    if (sc.vxlan) {
        decode.mode = weir::packet::TunnelMode::kBoth;
        // Tenant flows, and the tunnels' own: one per direction of each, as the VTEPs' source
        // ports differ per direction.
        wc.table.capacity = 3 * sc.flows + sc.flows / 2;
    }
    decode.want_payload = sc.inspect;
    if (opt.extras) {
        decode.want_macs = decode.want_mpls = true;
        wc.table.macs = wc.table.mpls = wc.table.rtt = wc.table.sizes = true;
    }
    wc.decode = &decode;
    wc.workers = opt.workers;
    wc.handoff = sc.vxlan && opt.workers > 1 && !opt.no_handoff;
    weir::inspect::InspectConfig icfg;  // the defaults (4096 B, 16 packets per direction), a stream per flow
    icfg.streams = std::max<uint32_t>(65536, sc.flows + sc.flows / 4);
    std::unique_ptr<weir::inspect::Engine> engine;
    if (sc.inspect) {
        wc.inspect = &icfg;
        engine = std::make_unique<weir::inspect::Engine>(
            weir::inspect::Ruleset::compile(bench_rules(), icfg.depth, "bench"), icfg.streams);
        if (r.index == 0)
            std::fprintf(stderr, "worker_bench: 1000 rules: database %zu B, stream state %zu B per direction\n",
                         engine->ruleset().database_bytes(), engine->ruleset().stream_bytes());
    }
    weir::detect::ObserverConfig dcfg;  // the configuration's defaults
    for (uint16_t p : {7,    17,   19,   53,   111,  123,  137,   161,   389,   500,   520,   1434, 1900,
                       3283, 3478, 3702, 4500, 5353, 5683, 10001, 11211, 27015, 32414, 33848, 37810})
        dcfg.amplifiers.set(p);
    if (opt.detect) wc.detect = &dcfg;
    auto w = std::make_unique<weir::Worker>(wc, std::vector<weir::RxQueueRef>{}, -1, 0, hz, 0, rte_rdtsc());
    std::unique_ptr<weir::detect::Detector> detector;
    std::vector<nlohmann::json> events;
    if (w->observer())
        detector = std::make_unique<weir::detect::Detector>(weir::detect::Thresholds{},
                                                            std::vector<weir::detect::Observer*>{w->observer()});
    w->attach_engine(engine.get());
    if (wc.handoff) w->connect(r.mesh->inbound, &r.mesh->stopped);
    weir::RxQueueRef q{0, 0, weir::packet::kLinkEthernet, 0};
    weir::QueueStats qs;

    // The mbufs a NIC would fill: headers rewritten before each use.
    std::vector<rte_mbuf*> ring(kRing);
    if (rte_pktmbuf_alloc_bulk(r.pool, ring.data(), kRing) != 0) {
        std::fprintf(stderr, "worker_bench: mbuf pool too small\n");
        return -1;
    }
    for (auto* m : ring) std::memset(rte_pktmbuf_mtod(m, uint8_t*), 0, 128);
    // Payload: text-like bytes (letters, digits, spaces), the same in every scenario.
    std::mt19937_64 text(11);
    for (auto* m : ring) {
        uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
        for (uint32_t i = 58; i < 1518; ++i) {
            const uint32_t x = static_cast<uint32_t>(text() % 40);
            p[i] = static_cast<uint8_t>(x < 26 ? 'a' + x : x < 36 ? '0' + x - 26 : ' ');
        }
    }

    rte_ring* pmd_ring = nullptr;
    uint16_t port = 0;
    if (opt.pmd) {
        const std::string name = "bench_ring" + std::to_string(r.index);
        pmd_ring = rte_ring_create(name.c_str(), 1024, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
        const int pid = rte_eth_from_ring(pmd_ring);
        if (!pmd_ring || pid < 0) {
            std::fprintf(stderr, "worker_bench: cannot create net_ring port\n");
            return -1;
        }
        port = static_cast<uint16_t>(pid);
        rte_eth_conf conf{};
        if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 ||
            rte_eth_rx_queue_setup(port, 0, 1024, rte_socket_id(), nullptr, r.pool) != 0 ||
            rte_eth_tx_queue_setup(port, 0, 1024, rte_socket_id(), nullptr) != 0 || rte_eth_dev_start(port) != 0) {
            std::fprintf(stderr, "worker_bench: cannot start net_ring port\n");
            return -1;
        }
    }

    const size_t seq_len = sc.synflood ? 0 : std::min<size_t>(std::max<size_t>(4u << 20, 2ull * sc.flows), 32u << 20);
    const std::vector<uint32_t> seq = sc.synflood ? std::vector<uint32_t>{} : make_sequence(sc, seq_len, 42 + r.index);
    const bool v6_all = sc.family == 6;
    uint64_t now = 1'700'000'000'000'000'000ull;
    const uint64_t step_ns = 100;  // synthetic clock: 10 Mpps of packet time

    // Churn: the population slides by one flow every `slide` packets, so flows go idle and
    // expire at a steady rate (idle timeout 1 s of packet time).
    const uint64_t slide = 64;
    uint64_t seq_pos = 0, pkt_no = 0;
    auto fill = [&](rte_mbuf** pkts, size_t base) {
        for (uint16_t i = 0; i < kBurst; ++i, ++pkt_no) {
            rte_mbuf* m = ring[(base + i) % kRing];
            uint32_t idx;
            if (sc.synflood)
                idx = static_cast<uint32_t>(pkt_no * 2654435761u) ^ (r.index << 28);
            else if (sc.churn)
                idx = static_cast<uint32_t>((pkt_no / slide + seq[seq_pos++ % seq_len]) % (1u << 28));
            else
                idx = seq[seq_pos++ % seq_len];
            const bool v6 = v6_all || (sc.family == 46 && (idx & 1));
            const bool vlan = sc.vlan && (idx & 2);
            const bool reverse = !sc.synflood && ((pkt_no * 0x9E3779B1u) >> 31 & 1);
            const uint16_t len = frame_len(sc, pkt_no, v6);
            const uint16_t ip_len = static_cast<uint16_t>(len - 14 - (vlan ? 4 : 0) - 4 /* FCS */);
            if (sc.vxlan) {
                VxlanGen::write(rte_pktmbuf_mtod(m, uint8_t*), idx, reverse);
            } else {
                TupleGen::write(rte_pktmbuf_mtod(m, uint8_t*), idx, reverse, v6, vlan, ip_len, sc.synflood);
            }
            m->data_len = m->pkt_len = static_cast<uint16_t>(len - 4);
            pkts[i] = m;
        }
    };
    if (g_export) g_export->workers[r.index] = w.get();
    auto drain = [&] {
        void* bufs[64];
        unsigned n;
        while (!g_export && (n = rte_ring_sc_dequeue_burst(w->full_ring(), bufs, 64, nullptr)) != 0)
            rte_ring_sp_enqueue_burst(w->free_ring(), bufs, n, nullptr);
        if (detector) {  // the control side's merge and decisions (untimed, as draining is)
            detector->poll(events);
            for (const auto& e : events) r.res.detect_events += e["phase"] == "start";
            events.clear();
        }
    };

    // Warm-up: every flow of the population once (not for the SYN flood), untimed.
    rte_mbuf* pkts[kBurst];
    size_t base = 0;
    if (!sc.synflood && !sc.churn) {
        const uint64_t saved = pkt_no;
        for (uint64_t f = 0; f < sc.flows; f += kBurst) {
            for (uint16_t i = 0; i < kBurst; ++i) {
                rte_mbuf* m = ring[(base + i) % kRing];
                const uint32_t idx = static_cast<uint32_t>((f + i) % sc.flows);
                const bool v6 = v6_all || (sc.family == 46 && (idx & 1));
                if (sc.vxlan) {
                    VxlanGen::write(rte_pktmbuf_mtod(m, uint8_t*), idx, false);
                } else {
                    TupleGen::write(rte_pktmbuf_mtod(m, uint8_t*), idx, false, v6, sc.vlan && (idx & 2),
                                    static_cast<uint16_t>(frame_len(sc, 0, v6) - 18 - (sc.vlan && (idx & 2) ? 4 : 0)),
                                    true);
                }
                m->data_len = m->pkt_len = static_cast<uint16_t>(frame_len(sc, 0, v6) - 4);
                pkts[i] = m;
            }
            w->process_burst(q, qs, pkts, kBurst, now);
            if (wc.handoff) w->drain_handoffs();
            now += step_ns * kBurst;
            base += kBurst;
            if ((f & 0xFFFF) == 0) drain();
        }
        pkt_no = saved;
    }
    const uint64_t created0 = w->table_stats().created.get();
    const uint64_t inspected0 = w->inspector() ? w->inspector()->stats().bytes.get() : 0;
    const uint64_t records0 = w->stats().records.get();

    const uint64_t total = std::max<uint64_t>(opt.packets, sc.synflood ? 0 : 2ull * sc.flows);
    uint64_t cycles = 0, pmd_cycles = 0;
    for (uint64_t done = 0; done < total; done += kBurst) {
        fill(pkts, base);
        base += kBurst;
        if (opt.pmd) {
            rte_ring_sp_enqueue_burst(pmd_ring, reinterpret_cast<void**>(pkts), kBurst, nullptr);
            const uint64_t t0 = rte_rdtsc();
            const uint16_t n = rte_eth_rx_burst(port, 0, pkts, kBurst);
            const uint64_t t1 = rte_rdtsc();
            w->process_burst(q, qs, pkts, n, now);
            w->housekeeping(now, t1);
            const uint64_t t2 = rte_rdtsc();
            pmd_cycles += t1 - t0;
            cycles += t2 - t0;
        } else {
            const uint64_t t0 = rte_rdtsc();
            w->process_burst(q, qs, pkts, kBurst, now);
            if (wc.handoff) w->drain_handoffs();
            w->housekeeping(now, t0);
            cycles += rte_rdtsc() - t0;
        }
        now += step_ns * kBurst;
        if ((done & 0x3FF) == 0) drain();
    }
    if (wc.handoff) {
        // The others may still hand over packets: take them in until every worker is done.
        r.mesh->stopped.fetch_add(1);
        while (r.mesh->stopped.load() < opt.workers) {
            w->drain_handoffs();
            drain();
        }
        while (w->drain_handoffs()) drain();
        r.res.handed = w->stats().handed_out.get();
        r.res.handoff_dropped = w->stats().handoff_dropped.get();
    }
    drain();
    if (g_export) {
        g_export->finished[r.index] = true;
        while (!g_export->drained[r.index].load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    r.res.packets = total;
    r.res.cycles = cycles;
    r.res.pmd_cycles = pmd_cycles;
    r.res.created = w->table_stats().created.get() - created0;
    r.res.records = w->stats().records.get() - records0;
    r.res.dropped = w->stats().dropped_records.get();
    r.res.table_bytes = w->table_memory();
    if (const auto* in = w->inspector()) {
        r.res.inspected_bytes = in->stats().bytes.get() - inspected0;
        r.res.inspected_flows = in->stats().flows.get();
        r.res.inspect_skipped = in->stats().skipped.get();
    }
    r.res.capacity = w->table_capacity();
    if (const auto* o = w->observer()) {
        const auto st = o->stats();
        r.res.detect_overflow = st.overflow_sources + st.overflow_pairs + st.overflow_destinations;
        r.res.detect_bytes = o->memory_bytes();
    }
    rte_pktmbuf_free_bulk(ring.data(), kRing);
    if (opt.pmd) {
        rte_eth_dev_stop(port);
        rte_eth_dev_close(port);
        rte_ring_free(pmd_ring);
    }
    return 0;
}

std::vector<Scenario> scenarios() {
    std::vector<Scenario> v;
    for (uint32_t n : {1000u, 100'000u, 1'000'000u, 10'000'000u}) {
        const std::string k = n >= 1'000'000 ? std::to_string(n / 1'000'000) + "M" : std::to_string(n / 1000) + "k";
        v.push_back({"tcp64_uniform_" + k, n});
        v.push_back({"tcp64_zipf_" + k, n, true});
    }
    v.push_back({"imix_uniform_100k", 100'000, false, 4, false, true});
    v.push_back({"tcp64_uniform_1k_inspect", 1000, false, 4, false, false, false, false, false, true});
    v.push_back({"imix_uniform_100k_inspect", 100'000, false, 4, false, true, false, false, false, true});
    v.push_back({"tcp64_uniform_100k_inspect", 100'000, false, 4, false, false, false, false, false, true});
    v.push_back({"imix_churn_100k", 100'000, false, 4, false, true, false, true});
    v.push_back({"imix_churn_100k_inspect", 100'000, false, 4, false, true, false, true, false, true});
    v.push_back({"ipv6_uniform_100k", 100'000, false, 6});
    v.push_back({"mixed_v4v6_vlan_100k", 100'000, false, 46, true});
    v.push_back({"mixed_v4v6_vlan_1M", 1'000'000, false, 46, true});
    v.push_back({"synflood", 0, false, 4, false, false, true});
    v.push_back({"churn_100k", 100'000, false, 4, false, false, false, true});
    v.push_back({"vxlan64_both_1M", 1'000'000, false, 4, false, false, false, false, true});
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    std::string cmdline;
    for (int i = 0; i < argc; ++i) cmdline += std::string(i ? " " : "") + argv[i];
    Options opt;
    static const option longopts[] = {
        {"scenario", required_argument, nullptr, 's'}, {"mode", required_argument, nullptr, 'm'},
        {"workers", required_argument, nullptr, 'w'},  {"packets", required_argument, nullptr, 'n'},
        {"no-handoff", no_argument, nullptr, 'H'},     {"detect", no_argument, nullptr, 'D'},
        {"extras", no_argument, nullptr, 'X'},         {"export", required_argument, nullptr, 'E'},
        {"help", no_argument, nullptr, 'h'},           {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:m:w:n:HDXE:h", longopts, nullptr)) != -1) {
        switch (c) {
            case 's': opt.only = optarg; break;
            case 'm': opt.pmd = std::string(optarg) == "pmd"; break;
            case 'w': opt.workers = static_cast<uint32_t>(std::stoul(optarg)); break;
            case 'n': opt.packets = std::stoull(optarg); break;
            case 'H': opt.no_handoff = true; break;
            case 'D': opt.detect = true; break;
            case 'X': opt.extras = true; break;
            case 'E': opt.export_to = optarg; break;
            default:
                std::printf(
                    "usage: worker_bench [--scenario NAME|list] [--mode inmem|pmd] [--workers N] [--packets N] "
                    "[--no-handoff] [--detect] [--extras] [--export ipfix_udp|ipfix_file|jsonl_file]\n");
                return c == 'h' ? 0 : 2;
        }
    }
    if (opt.only == "list") {
        for (const auto& s : scenarios()) std::printf("%s\n", s.name.c_str());
        return 0;
    }
    std::string lcores = "0@0";
    for (uint32_t i = 1; i < opt.workers; ++i) lcores += "," + std::to_string(i) + "@" + std::to_string(i);
    std::vector<std::string> eal = {"worker_bench", "--lcores=" + lcores, "--no-huge",
                                    "--no-shconf",  "--no-pci",           "-m",
                                    "512",          "--no-telemetry",     "--log-level=warning"};
    std::vector<char*> eargv;
    for (auto& s : eal) eargv.push_back(s.data());
    if (rte_eal_init(static_cast<int>(eargv.size()), eargv.data()) < 0) {
        std::fprintf(stderr, "worker_bench: EAL init failed\n");
        return 1;
    }
    std::vector<rte_mempool*> pools;
    for (uint32_t i = 0; i < opt.workers; ++i) {
        const std::string name = "bench_mb" + std::to_string(i);
        pools.push_back(rte_pktmbuf_pool_create(name.c_str(), kRing + 1024, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0));
        if (!pools.back()) {
            std::fprintf(stderr, "worker_bench: cannot allocate mbufs\n");
            return 1;
        }
    }
    const double hz = static_cast<double>(rte_get_tsc_hz());
    for (const auto& sc : scenarios()) {
        if (!opt.only.empty() && sc.name != opt.only) continue;
        std::vector<Run> runs(opt.workers);
        Mesh mesh;
        static int serial = 0;
        ++serial;
        for (uint32_t a = 0; a < opt.workers && sc.vxlan && opt.workers > 1; ++a) {
            const std::string name = "bh" + std::to_string(serial) + "_" + std::to_string(a);
            mesh.inbound.push_back(rte_ring_create_elem(name.c_str(), sizeof(weir::Handoff), 8192, 0, RING_F_SC_DEQ));
        }
        unsigned lc = rte_get_next_lcore(-1, 1, 0);
        for (uint32_t i = 0; i < opt.workers; ++i) runs[i] = Run{&sc, &opt, i, pools[i], &mesh, {}};
        // End to end: the exporter, its sink and the control thread.
        std::unique_ptr<weir::perf::UdpSink> sink;
        std::unique_ptr<ExportSide> side;
        std::thread control;
        const std::string file = "/tmp/weir-bench-export-" + std::to_string(getpid());
        if (!opt.export_to.empty()) {
            weir::config::Config cfg;
            cfg.probe = "bench";
            weir::config::Exporter ex;
            if (opt.export_to == "ipfix_udp") {
                sink = std::make_unique<weir::perf::UdpSink>();
                weir::config::parse_url("udp://127.0.0.1:" + std::to_string(sink->port), ex);
            } else if (opt.export_to == "ipfix_file" || opt.export_to == "jsonl_file") {
                if (opt.export_to == "jsonl_file") ex.format = weir::config::Format::kJsonl;
                weir::config::parse_url("file://" + file, ex);
                ex.rotate_mb = 256;  // a long run does not fill the disk: one file of 256 MiB at a time
            } else {
                std::fprintf(stderr, "worker_bench: --export takes ipfix_udp, ipfix_file or jsonl_file\n");
                return 2;
            }
            side = std::make_unique<ExportSide>(opt.workers);
            side->exporter = weir::exporter::make_exporter(ex, cfg);
            g_export = side.get();
            control = std::thread([&] { side->run(); });
            // The control thread on a CPU of its own, as weir's is, when one is left over; else on
            // any (EAL pinned this thread, and so the new one, to worker 0's CPU).
            cpu_set_t cpus;
            CPU_ZERO(&cpus);
            const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
            for (long cpu = opt.workers; cpu < ncpu; ++cpu) CPU_SET(cpu, &cpus);
            if (CPU_COUNT(&cpus) == 0)
                for (long cpu = 0; cpu < ncpu; ++cpu) CPU_SET(cpu, &cpus);
            pthread_setaffinity_np(control.native_handle(), sizeof(cpus), &cpus);
        }
        for (uint32_t i = 1; i < opt.workers; ++i, lc = rte_get_next_lcore(lc, 1, 0))
            rte_eal_remote_launch(run_worker, &runs[i], lc);
        run_worker(&runs[0]);  // worker 0 on the main lcore: nothing else spins meanwhile
        rte_eal_mp_wait_lcore();
        std::string export_line;
        if (side) {
            control.join();
            g_export = nullptr;
            const auto& st = side->exporter->stats();
            char b[512];
            std::snprintf(b, sizeof(b),
                          " export=%s exported_records=%lu export_lost=%lu export_krec_per_s=%.0f export_sink=%s",
                          opt.export_to.c_str(), static_cast<unsigned long>(st.records.get()),
                          static_cast<unsigned long>(st.lost_records.get()),
                          st.records.get() /
                              std::max(1e-9, std::chrono::duration<double>(side->last - side->first).count()) / 1000,
                          sink ? (std::to_string(sink->datagrams.load()) + "_of_" +
                                  std::to_string(st.messages.get() + st.template_messages.get()) + "_datagrams")
                                     .c_str()
                               : "file");
            export_line = b;
            side.reset();
            for (const char* suffix : {"", ".1"}) std::remove((file + suffix).c_str());
            std::error_code ec;
            for (const auto& f : std::filesystem::directory_iterator("/tmp", ec))
                if (f.path().string().rfind(file, 0) == 0) std::filesystem::remove(f.path(), ec);
        }
        for (rte_ring* x : mesh.inbound) rte_ring_free(x);

        Result sum;
        double mpps = 0, secs_max = 0;
        for (const auto& r : runs) {
            sum.packets += r.res.packets;
            sum.cycles += r.res.cycles;
            sum.pmd_cycles += r.res.pmd_cycles;
            sum.created += r.res.created;
            sum.records += r.res.records;
            sum.dropped += r.res.dropped;
            sum.handed += r.res.handed;
            sum.handoff_dropped += r.res.handoff_dropped;
            sum.inspected_bytes += r.res.inspected_bytes;
            sum.inspected_flows += r.res.inspected_flows;
            sum.inspect_skipped += r.res.inspect_skipped;
            sum.detect_events += r.res.detect_events;
            sum.detect_overflow += r.res.detect_overflow;
            sum.detect_bytes = r.res.detect_bytes;
            const double secs = r.res.cycles / hz;
            mpps += r.res.packets / secs / 1e6;  // workers run in parallel: rates add
            secs_max = std::max(secs_max, secs);
            sum.table_bytes = r.res.table_bytes;
            sum.capacity = r.res.capacity;
        }
        const double cpp = static_cast<double>(sum.cycles) / sum.packets;
        const double pkt_bytes = sc.vxlan ? VxlanGen::kLen + 4
            : sc.imix                     ? (7 * 64 + 4 * 594 + 1518) / 12.0
                                          : (sc.family == 6 ? 78 : 64);
        std::printf(
            "scenario=%s flows=%u pkt_bytes=%.0f mpps=%.2f cycles_per_pkt=%.1f new_flows_per_s=%.0f "
            "bytes_per_flow=%.0f workers=%u mode=%s records_per_s=%.0f hit_rate=%.4f pmd_cycles_per_pkt=%.1f "
            "export_drops=%lu handed=%lu handoff_drops=%lu table_mib=%.1f inspected_bytes_per_pkt=%.1f "
            "inspected_flows=%lu inspect_skipped=%lu detect=%d detect_events=%lu detect_overflow=%lu detect_mib=%.1f "
            "extras=%d tsc_ghz=%.2f%s cmd=\"%s\"\n",
            sc.name.c_str(), sc.synflood ? sum.capacity : sc.flows, pkt_bytes, mpps, cpp, sum.created / secs_max,
            static_cast<double>(sum.table_bytes) / sum.capacity, opt.workers, opt.pmd ? "pmd" : "inmem",
            sum.records / secs_max, 1.0 - static_cast<double>(sum.created) / sum.packets,
            static_cast<double>(sum.pmd_cycles) / sum.packets, static_cast<unsigned long>(sum.dropped),
            static_cast<unsigned long>(sum.handed), static_cast<unsigned long>(sum.handoff_dropped),
            sum.table_bytes / 1048576.0, static_cast<double>(sum.inspected_bytes) / sum.packets,
            static_cast<unsigned long>(sum.inspected_flows), static_cast<unsigned long>(sum.inspect_skipped),
            opt.detect ? 1 : 0, static_cast<unsigned long>(sum.detect_events),
            static_cast<unsigned long>(sum.detect_overflow), sum.detect_bytes / 1048576.0, opt.extras ? 1 : 0, hz / 1e9,
            export_line.c_str(), cmdline.c_str());
        std::fflush(stdout);
    }
    rte_eal_cleanup();
    return 0;
}
