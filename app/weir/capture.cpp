// SPDX-License-Identifier: BSD-3-Clause
#include "capture.h"

#include <arpa/inet.h>
#include <rte_ring.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "inspect/rules.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string endpoint(const packet::Tuple& t, const uint8_t* a, uint16_t port) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(t.ip_version == 6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf));
    char out[INET6_ADDRSTRLEN + 16];
    std::snprintf(out, sizeof(out), t.ip_version == 6 ? "[%s]:%u" : "%s:%u", buf, static_cast<unsigned>(port));
    return out;
}

// "flow 10.0.0.1:51234 > 10.0.0.2:80 proto 6; rule 7 (name) tag T"
std::string comment_of(const CaptureSlot& s) {
    const packet::Tuple& t = s.tuple;
    std::string c = "flow " + endpoint(t, t.src, t.sport) + " > " + endpoint(t, t.dst, t.dport) + " proto " +
        std::to_string(t.proto) + "; port " + std::to_string(s.port);
    if (const inspect::RuleInfo* r = inspect::Registry::instance().rule_info(s.rule)) {
        c += "; rule " + std::to_string(r->id) + " (" + r->name + ")";
        if (!r->tag.empty()) c += " tag " + r->tag;
    }
    return c;
}

uint64_t unix_now() { return static_cast<uint64_t>(std::time(nullptr)); }

// Takes what the workers handed over; the number of packets written.
unsigned drain(CaptureWriter& w, const std::vector<rte_ring*>& full, const std::vector<rte_ring*>& free) {
    unsigned total = 0;
    for (size_t i = 0; i < full.size(); ++i) {
        void* slots[64];
        const unsigned n = rte_ring_sc_dequeue_burst(full[i], slots, 64, nullptr);
        const uint64_t now = n ? unix_now() : 0;
        for (unsigned k = 0; k < n; ++k) {
            const auto& s = *static_cast<const CaptureSlot*>(slots[k]);
            w.writer->write(s.ts_ns, s.linktype, s.data(), s.cap_len, s.wire_len, comment_of(s), now);
        }
        if (n) rte_ring_sp_enqueue_burst(free[i], slots, n, nullptr);
        total += n;
    }
    return total;
}

}  // namespace

std::unique_ptr<CaptureWriter> start_capture(const config::Capture& c,
                                             const std::vector<std::unique_ptr<Worker>>& workers) {
    auto w = std::make_unique<CaptureWriter>();
    capture::WriterConfig wc;
    wc.dir = c.dir;
    wc.file_bytes = static_cast<uint64_t>(c.file_mb * 1048576.0);
    wc.file_s = c.file_s;
    wc.budget_bytes = static_cast<uint64_t>(c.budget_mb * 1048576.0);
    w->writer = std::make_unique<capture::PcapngWriter>(wc);
    std::vector<rte_ring*> full, free;
    for (const auto& x : workers)
        if (x->capture_ring()) {
            full.push_back(x->capture_ring());
            free.push_back(x->capture_free_ring());
        }
    CaptureWriter* self = w.get();
    w->thread = std::thread([self, full, free] {
        auto last_flush = std::chrono::steady_clock::now();
        for (;;) {
            const bool stopping = self->stop.load(std::memory_order_acquire);
            const unsigned n = drain(*self, full, free);
            const auto now = std::chrono::steady_clock::now();
            if (now - last_flush > std::chrono::seconds(1)) {
                self->writer->flush();
                last_flush = now;
            }
            {
                std::lock_guard<std::mutex> g(self->mu);
                self->stats = self->writer->stats();
            }
            if (stopping && n == 0) break;  // the workers are done: nothing more can come
            if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        self->writer->close();
        std::lock_guard<std::mutex> g(self->mu);
        self->stats = self->writer->stats();
    });
    return w;
}

void stop_capture(CaptureWriter& w) {
    w.stop.store(true, std::memory_order_release);
    if (w.thread.joinable()) w.thread.join();
}

}  // namespace weir
