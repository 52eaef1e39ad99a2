// SPDX-License-Identifier: BSD-3-Clause
// The control side of detection (detect/detector.h): how long the control thread takes to merge
// the workers' published banks and decide an interval, with the configuration's default table
// sizes and thresholds. The workers' half (detect/observer.h) is fed untimed, as workers would:
//   - background: `flows` new conversations per interval (second) from random sources to random
//     destinations, TCP SYN (70%) or UDP (30%), each with one more packet from the initiator, as
//     in a replay of a capture of 1M one-way conversations at 1 Mpps;
//   - a vertical scan (one source, 2,000 ports of one destination per interval), a SYN flood
//     (100,000 SYNs per interval from 50,000 sources to one destination) and UDP reflection (5,000
//     answers per interval from 500 reflectors' port 53 to one destination), so that events start.
// Flows go to the workers by a hash of their addresses, as symmetric RSS would.
// One line per measurement:
//   detect_control workers=W flows_per_interval=F intervals=N poll_ms_median=M poll_ms_max=X
//     ns_per_key=K finish_ms=F teardown_ms=T banks=B events=E digest=HEX
// `digest` is a hash of every event the detector emitted (phase, kind, attacker, victim,
// protocol, port, times, counts and evidence; not the id): two builds that decide alike print the
// same digest.
// usage: detect_bench [--workers W] [--flows F] [--intervals N] [--rounds R]
#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "detect/detector.h"
#include "detect/hll.h"
#include "detect/observer.h"
#include "packet/layer_v4.h"

using namespace weir;
using namespace weir::detect;

namespace {

constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kT0 = 1'704'067'200ull * kSec;

constexpr Seen kNew{true, true, false, false};
constexpr Seen kMid{true, false, false, false};
constexpr Seen kAnswer{false, false, true, false};

struct Options {
    unsigned workers = 1;
    uint32_t flows = 500'000;
    unsigned intervals = 8;
    unsigned rounds = 3;
};

// FNV-1a over the events' text, sorted (the order of events that start together is not part of
// what is decided).
uint64_t digest(const std::vector<nlohmann::json>& events) {
    std::vector<std::string> lines;
    for (auto e : events) {
        e.erase("id");
        lines.push_back(e.dump());
    }
    std::sort(lines.begin(), lines.end());
    uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& s : lines)
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

void round(const Options& opt) {
    ObserverConfig oc;  // the configuration's defaults
    for (uint16_t p : {19, 53, 111, 123, 137, 161, 389, 1900, 3702, 5353, 11211}) oc.amplifiers.set(p);
    std::vector<std::unique_ptr<Observer>> obs;
    std::vector<Observer*> ptrs;
    for (unsigned i = 0; i < opt.workers; ++i) {
        obs.push_back(std::make_unique<Observer>(oc));
        ptrs.push_back(obs.back().get());
    }
    auto det = std::make_unique<Detector>(Thresholds{}, ptrs);
    std::vector<nlohmann::json> events, all;
    std::mt19937_64 rng(7);
    auto worker_of = [&](uint32_t a, uint32_t b) {
        return static_cast<unsigned>(mix64(uint64_t{a ^ b}) % opt.workers);
    };
    auto send = [&](uint32_t s, uint32_t d, uint8_t proto, uint16_t sp, uint16_t dp, uint8_t flags, const Seen& seen,
                    uint64_t ts) {
        obs[worker_of(s, d)]->packet(packet::ipv4_layer(s, d, proto, sp, dp, flags, proto == 6 ? 60 : 120), seen, ts);
    };
    std::vector<double> polls;
    for (unsigned k = 0; k < opt.intervals; ++k) {
        const uint64_t start = kT0 + k * kSec;
        const uint32_t attacks = 2000 + 100'000 + 5000;
        const uint32_t n = opt.flows + attacks;
        for (uint32_t i = 0; i < n; ++i) {
            const uint64_t ts = start + static_cast<uint64_t>(i) * kSec / n;
            if (i % 97 == 0 && i / 97 < 2000) {  // vertical scan
                send(0x0B000001, 0x0A000001, 6, 40000, static_cast<uint16_t>(1 + (k * 2000 + i / 97) % 65000), 0x02,
                     kNew, ts);
            } else if (i % 7 == 1 && i / 7 < 100'000) {  // SYN flood from spoofed sources
                send(0x64000000u | static_cast<uint32_t>(rng() % 50000), 0x0A000002, 6,
                     static_cast<uint16_t>(1024 + rng() % 60000), 80, 0x02, kNew, ts);
            } else if (i % 11 == 2 && i / 11 < 5000) {  // DNS reflection
                send(0x14000000u | static_cast<uint32_t>(rng() % 500), 0x0A000003, 17, 53,
                     static_cast<uint16_t>(1024 + rng() % 60000), 0, kNew, ts);
            } else {
                const auto s = static_cast<uint32_t>(rng()), d = static_cast<uint32_t>(rng());
                const bool tcp = rng() % 10 < 7;
                const auto sp = static_cast<uint16_t>(1024 + rng() % 60000), dp = static_cast<uint16_t>(rng());
                send(s, d, tcp ? 6 : 17, sp, dp, tcp ? 0x02 : 0, kNew, ts);
                send(s, d, tcp ? 6 : 17, sp, dp, tcp ? 0x10 : 0, kMid, ts);
                if (i % 5 == 0) send(d, s, tcp ? 6 : 17, dp, sp, tcp ? 0x12 : 0, kAnswer, ts);
            }
        }
        // The interval ends on every worker (each publishes its bank); the control side takes
        // and decides it. Timed: the control thread's share.
        for (auto& o : obs) o->roll(start + kSec);
        const auto t0 = std::chrono::steady_clock::now();
        unsigned merged = 0;
        while (merged < opt.workers) merged += det->poll(events);
        polls.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        all.insert(all.end(), events.begin(), events.end());
        events.clear();
    }
    for (auto& o : obs) o->finish();
    auto t1 = std::chrono::steady_clock::now();
    det->finish(events);
    const double finish_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
    all.insert(all.end(), events.begin(), events.end());
    const DetectorStats st = det->stats();
    t1 = std::chrono::steady_clock::now();
    det.reset();
    const double teardown_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();

    // Keys merged per interval: every worker's sources and pairs (each bank holds at most its
    // table's size of them; the few destinations are left out).
    const uint64_t per_interval = std::min<uint64_t>(opt.flows, uint64_t{oc.sources} * opt.workers) +
        std::min<uint64_t>(opt.flows, uint64_t{oc.pairs} * opt.workers);
    std::vector<double> sorted = polls;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    uint64_t started = 0;
    for (const auto& e : all) started += e["phase"] == "start";
    std::printf(
        "detect_control workers=%u flows_per_interval=%u intervals=%u poll_ms_median=%.2f poll_ms_max=%.2f "
        "ns_per_key=%.0f finish_ms=%.2f teardown_ms=%.2f banks=%lu events=%lu digest=%016lx\n",
        opt.workers, opt.flows, opt.intervals, median, sorted.back(),
        median * 1e6 / static_cast<double>(per_interval ? per_interval : 1), finish_ms, teardown_ms,
        static_cast<unsigned long>(st.banks_merged), static_cast<unsigned long>(started),
        static_cast<unsigned long>(digest(all)));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    static const option longs[] = {{"workers", required_argument, nullptr, 'w'},
                                   {"flows", required_argument, nullptr, 'f'},
                                   {"intervals", required_argument, nullptr, 'n'},
                                   {"rounds", required_argument, nullptr, 'r'},
                                   {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
        switch (c) {
            case 'w': opt.workers = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
            case 'f': opt.flows = static_cast<uint32_t>(std::strtoul(optarg, nullptr, 10)); break;
            case 'n': opt.intervals = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
            case 'r': opt.rounds = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10)); break;
            default:
                std::fprintf(stderr, "usage: detect_bench [--workers W] [--flows F] [--intervals N] [--rounds R]\n");
                return 2;
        }
    }
    if (opt.workers == 0 || opt.workers > 64 || opt.intervals == 0 || opt.rounds == 0) {
        std::fprintf(stderr, "detect_bench: --workers 1..64, --intervals and --rounds at least 1\n");
        return 2;
    }
    for (unsigned r = 0; r < opt.rounds; ++r) round(opt);
    return 0;
}
