// SPDX-License-Identifier: BSD-3-Clause
// The final flush (flow::FlowTable::flush): how fast every active flow is ended when weir stops
// or a replay ends, with the table as traffic left it. `--flows` flows (random IPv4 5-tuples, two
// packets each, their packets spread over 10 s of packet time so they sit all over the timer
// wheel) go into a table of twice that capacity; the flush is timed with a sink that copies each
// ended entry out, as a worker copies it into a record batch.
// One line per round: flush flows=N seconds=S mflows_per_s=R ended=N
// usage: flush_bench [--flows N] [--rounds R]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "flow/flow_table.h"

using namespace weir;

namespace {

struct CopySink {
    flow::FlowEntry batch[32];
    uint32_t n = 0;
    uint64_t ended = 0;
    void on_created(const flow::FlowEntry&) noexcept {}
    void on_expired(const flow::FlowEntry& e, flow::EndReason) noexcept {
        std::memcpy(&batch[n], &e, sizeof e);
        n = (n + 1) % 32;
        ++ended;
    }
};

}  // namespace

int main(int argc, char** argv) {
    uint32_t flows = 1'000'000;
    unsigned rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--flows")) flows = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
        if (!std::strcmp(argv[i], "--rounds")) rounds = static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    }
    if (flows < 16 || flows > (1u << 27) || rounds == 0) {
        std::fprintf(stderr, "usage: flush_bench [--flows 16..134217728] [--rounds R]\n");
        return 2;
    }
    constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;
    for (unsigned r = 0; r < rounds; ++r) {
        flow::TableConfig cfg;
        cfg.capacity = flows * 2;
        auto t = std::make_unique<flow::FlowTable>(cfg);
        CopySink sink;
        std::mt19937_64 rng(r + 1);
        for (uint32_t i = 0; i < flows; ++i) {
            packet::PacketInfo p{};
            p.tuple.ip_version = 4;
            p.tuple.proto = 6;
            const uint64_t x = rng();
            std::memcpy(p.tuple.src, &x, 4);
            std::memcpy(p.tuple.dst, reinterpret_cast<const uint8_t*>(&x) + 4, 4);
            p.tuple.sport = static_cast<uint16_t>(rng());
            p.tuple.dport = 443;
            p.tcp_flags = 0x10;
            p.ip_octets = 100;
            const uint64_t ts = kT0 + static_cast<uint64_t>(i) * 10'000'000'000ull / flows;
            for (int k = 0; k < 2; ++k) {
                flow::FlowTable::Prepared pk;
                t->prepare(p, pk);
                t->update(pk, p, ts + static_cast<uint64_t>(k) * 1000, 0, sink);
            }
        }
        const auto t0 = std::chrono::steady_clock::now();
        t->flush(sink);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("flush flows=%u seconds=%.4f mflows_per_s=%.2f ended=%lu\n", flows, s, flows / s / 1e6,
                    static_cast<unsigned long>(sink.ended));
        std::fflush(stdout);
    }
    return 0;
}
