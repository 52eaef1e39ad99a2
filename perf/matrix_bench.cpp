// SPDX-License-Identifier: BSD-3-Clause
// The flow matrix's cost on the control thread: records per second through Matrix::count (zone
// lookups, cell update, policy) for a site of many zones and prefixes, with and without a policy.
// Prints one line per run.
// usage: matrix_bench [--records N] [--zones N] [--prefixes-per-zone N]
#include <getopt.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "zones/zones.h"

using namespace weir;

// "z" + N (written out: GCC 12 warns falsely on the operator+ of a literal and a temporary).
static std::string zname(unsigned long n) {
    std::string s = "z";
    s += std::to_string(n);
    return s;
}

int main(int argc, char** argv) {
    uint64_t records = 4'000'000;
    unsigned zones = 32, per = 64;
    static const option opts[] = {{"records", required_argument, nullptr, 'n'},
                                  {"zones", required_argument, nullptr, 'z'},
                                  {"prefixes-per-zone", required_argument, nullptr, 'p'},
                                  {nullptr, 0, nullptr, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, nullptr)) != -1;) {
        switch (c) {
            case 'n': records = std::stoull(optarg); break;
            case 'z': zones = static_cast<unsigned>(std::stoul(optarg)); break;
            case 'p': per = static_cast<unsigned>(std::stoul(optarg)); break;
            default:
                std::fprintf(stderr, "usage: matrix_bench [--records N] [--zones N] [--prefixes-per-zone N]\n");
                return 2;
        }
    }
    // Zones of /24s and /16s (two lengths to search) inside 10.0.0.0/8; a third of the addresses
    // fall in no zone.
    std::vector<zones::ZoneSpec> spec;
    std::mt19937_64 rng(1);
    for (unsigned z = 0; z < zones; ++z) {
        zones::ZoneSpec s{zname(z), {}};
        for (unsigned i = 0; i < per; ++i) {
            const unsigned n = z * per + i;
            char p[32];
            if (i % 8 == 0)
                std::snprintf(p, sizeof p, "10.%u.0.0/16", 100 + n / 8 % 150);
            else
                std::snprintf(p, sizeof p, "10.%u.%u.0/24", n / 256 % 100, n % 256);
            try {
                s.prefixes.push_back(zones::parse_prefix(p));
            } catch (...) {}
        }
        spec.push_back(std::move(s));
    }
    // Drop prefixes that two zones share (the generator can repeat a /16).
    std::vector<zones::ZoneSpec> clean;
    std::vector<std::string> seen;
    for (auto& s : spec) {
        zones::ZoneSpec c{s.name, {}};
        for (auto& p : s.prefixes) {
            const std::string t = zones::prefix_text(p);
            if (std::find(seen.begin(), seen.end(), t) != seen.end()) continue;
            seen.push_back(t);
            c.prefixes.push_back(p);
        }
        clean.push_back(std::move(c));
    }
    // 64k distinct records, reused: addresses across 10.0.0.0/8, a few services.
    std::vector<flow::FlowRecord> recs(65536);
    static const uint16_t kPorts[] = {443, 80, 53, 22, 161, 3306, 8080, 123};
    for (auto& r : recs) {
        std::memset(&r, 0, sizeof r);
        const uint32_t s = 0x0A000000u | static_cast<uint32_t>(rng() & 0xFFFFFF);
        const uint32_t d = 0x0A000000u | static_cast<uint32_t>(rng() & 0xFFFFFF);
        const uint32_t sb = __builtin_bswap32(s), db = __builtin_bswap32(d);
        std::memcpy(r.tuple.src, &sb, 4);
        std::memcpy(r.tuple.dst, &db, 4);
        r.tuple.ip_version = 4;
        r.tuple.proto = rng() % 4 ? 6 : 17;
        r.tuple.sport = static_cast<uint16_t>(1024 + rng() % 60000);
        r.tuple.dport = kPorts[rng() % 8];
        r.fwd.packets = 10;
        r.fwd.octets = 1000;
        r.rev.packets = 8;
        r.rev.octets = 9000;
        r.fwd.first_ns = r.fwd.last_ns = 1;
    }
    size_t prefixes = 0;
    for (auto& s : clean) prefixes += s.prefixes.size();
    for (int with_policy = 0; with_policy < 2; ++with_policy) {
        zones::PolicySpec pol;
        pol.on = with_policy;
        for (unsigned z = 0; z + 1 < zones; z += 2)
            pol.allow.push_back({zname(z), zname(z + 1), 6, {{443, 443}, {8000, 8080}}});
        pol.allow.push_back({"any", "any", 17, {{53, 53}, {123, 123}}});
        zones::Matrix m(clean, pol, 65536);
        std::vector<zones::Violation> v;
        v.reserve(65536);
        const auto t0 = std::chrono::steady_clock::now();
        const uint64_t c0 = __rdtsc();
        for (uint64_t done = 0; done < records; done += 32) {
            m.count(&recs[done % recs.size()], 32, v);
            v.clear();
        }
        const uint64_t c1 = __rdtsc();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "matrix_bench zones=%u prefixes=%zu policy=%d policy_rules=%zu records=%lu cells=%zu "
            "violations=%lu mrecords_per_s=%.2f cycles_per_record=%.0f\n",
            zones, prefixes, with_policy, pol.on ? pol.allow.size() : 0, static_cast<unsigned long>(records), m.cells(),
            static_cast<unsigned long>(m.stats().violations), records / s / 1e6,
            static_cast<double>(c1 - c0) / static_cast<double>(records));
    }
    return 0;
}
