// SPDX-License-Identifier: BSD-3-Clause
#include "dpdk/replay.h"

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

#include "common/log.h"
#include "flow/flow_key.h"

namespace weir::dpdk {
namespace {

constexpr unsigned kRingSize = 4096;  // per queue
constexpr unsigned kBurst = 64;
constexpr uint32_t kSegMax = 65535;  // an mbuf segment's length is 16 bits

// The mapping outlives every mbuf that points into it (Replay::stop after the workers): nothing
// to free when a worker is done with a packet.
// An mbuf's packet is in one of the reader's buffers: the worker that frees the mbuf lets the
// reader have the buffer back (once every packet in it is freed).
void give_back(void*, void* token) { capture::CaptureReader::release(token); }

}  // namespace

std::vector<std::string> replay_files(const std::string& device) {
    if (device.rfind("net_pcap", 0) != 0) return {};
    std::vector<std::string> files;
    size_t pos = device.find(',');
    while (pos != std::string::npos) {
        const size_t start = pos + 1, end = device.find(',', start);
        const std::string arg = device.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (arg.rfind("rx_pcap=", 0) != 0) return {};
        files.push_back(arg.substr(8));
        pos = end;
    }
    return files;
}

Replay::Replay(std::vector<std::string> files, bool count) : files_(std::move(files)), counted_(count) {
    decode_.mode = packet::TunnelMode::kOuter;  // the queue is chosen by the outermost headers
    for (size_t i = 0; i < files_.size(); ++i) {
        std::unique_ptr<capture::CaptureReader> r;
        try {
            r = std::make_unique<capture::CaptureReader>(files_[i], capture::CaptureReader::Streamed{});
        } catch (const std::exception& e) {
            throw std::runtime_error("\"" + files_[i] + "\": " + e.what());
        }
        if (i == 0)
            linktype_ = r->linktype();
        else if (r->linktype() != linktype_)
            throw std::runtime_error("\"" + files_[i] + "\": link type " + std::to_string(r->linktype()) + ", but " +
                                     files_[0] + " has " + std::to_string(linktype_));
        if (count) {
            capture::Packet p;
            uint64_t n = 0;
            while (r->next(p)) ++n;
            if (!r->error().empty())
                problems_.push_back(files_[i] + ": stops after " + std::to_string(n) + " packets: " + r->error());
            r->rewind();
            packets_ += n;
        }
        readers_.push_back(std::move(r));
    }
}

uint64_t Replay::packets() const noexcept {
    return counted_ ? packets_ : stats_.packets.load(std::memory_order_acquire);
}

// The rings and buffers are DPDK memory, which EAL clean-up releases; the mappings go with the
// readers, after every packet that pointed into them.
Replay::~Replay() { stop(); }

uint16_t Replay::make_port(const std::string& name, uint16_t queues, int socket) {
    queues_ = queues;
    for (uint16_t q = 0; q < queues; ++q) {
        const std::string rn = name + "_q" + std::to_string(q);
        rte_ring* r = rte_ring_create(rn.c_str(), kRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (!r) throw std::runtime_error("cannot create ring " + rn + ": " + rte_strerror(rte_errno));
        rings_.push_back(r);
    }
    // Buffers without data room: each carries, in its private area, the shared-info block of the
    // external buffer it points to. Enough for full rings, the workers' bursts and caches.
    const unsigned n = queues * (kRingSize + 1024) + 2048;
    const uint16_t priv = RTE_ALIGN_CEIL(sizeof(rte_mbuf_ext_shared_info), RTE_MBUF_PRIV_ALIGN);
    pool_ = rte_pktmbuf_pool_create((name + "_mbufs").c_str(), n, 256, priv, 0, socket);
    if (!pool_)
        throw std::runtime_error("cannot allocate " + std::to_string(n) + " replay mbufs: " + rte_strerror(rte_errno));
    // Registered before the workers look it up (a driver may have done so already).
    if (rte_mbuf_dyn_rx_timestamp_register(&ts_offset_, &ts_flag_) != 0)
        throw std::runtime_error(std::string("cannot register the RX timestamp field: ") + rte_strerror(rte_errno));
    const int id = rte_eth_from_rings(name.c_str(), rings_.data(), queues, rings_.data(), queues,
                                      static_cast<unsigned>(socket < 0 ? 0 : socket));
    if (id < 0) throw std::runtime_error("cannot create replay port " + name + ": " + rte_strerror(rte_errno));
    return static_cast<uint16_t>(id);
}

void Replay::start() {
    thread_ = std::thread([this] { run(); });
}

void Replay::stop() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
}

// The queue of a packet: a hash of its outermost addresses (and ports, where it has them) that
// is the same in both directions. Packets that do not decode go to queue 0, where they are
// counted as the workers count such packets.
uint16_t Replay::queue_of(const capture::Packet& p) noexcept {
    packet::PacketInfo pi;
    if (packet::decode(p.data, p.caplen, p.caplen, static_cast<uint16_t>(linktype_), decode_, pi) !=
        packet::Drop::kNone)
        return 0;
    flow::FlowKey k;
    flow::canonicalize(pi.tuple, 0, pi.cvlan, flow::kViewPrimary, k);
    const uint64_t h = flow::key_hash(k);
    return static_cast<uint16_t>(((h >> 32) * queues_) >> 32);
}

void Replay::run() noexcept {
    // An lcore id of its own gives the thread a buffer cache in the pool (no shared ring
    // operation per buffer); without one (all taken) it still works, slower.
    const bool registered = rte_thread_register() == 0;
    std::vector<std::array<rte_mbuf*, kBurst>> batch(queues_);
    std::vector<unsigned> fill(queues_, 0);
    std::array<rte_mbuf*, kBurst> stash;
    unsigned stashed = 0, idle = 0;
    // Waits for the workers to make room: spins briefly (a ring drains in microseconds), then
    // sleeps, so a reader ahead of its workers leaves the CPU to the control thread.
    auto wait = [&] {
        if (++idle < 4096) {
            rte_pause();
            return;
        }
        stats_.waits.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    };
    auto flush = [&](uint16_t q) {
        unsigned sent = 0;
        while (sent < fill[q] && !stop_.load(std::memory_order_relaxed)) {
            const unsigned n = rte_ring_sp_enqueue_burst(
                rings_[q], reinterpret_cast<void* const*>(batch[q].data() + sent), fill[q] - sent, nullptr);
            sent += n;
            if (n)
                idle = 0;
            else
                wait();
        }
        stats_.packets.fetch_add(sent, std::memory_order_release);
        if (sent < fill[q]) rte_pktmbuf_free_bulk(batch[q].data() + sent, fill[q] - sent);
        fill[q] = 0;
    };
    auto mbuf = [&]() -> rte_mbuf* {
        while (stashed == 0) {
            if (rte_pktmbuf_alloc_bulk(pool_, stash.data(), kBurst) == 0) {
                stashed = kBurst;
                idle = 0;
            } else if (stop_.load(std::memory_order_relaxed)) {
                return nullptr;
            } else {
                wait();  // the workers hold every buffer: they give them back as they finish bursts
            }
        }
        return stash[--stashed];
    };
    bool stopped = false;
    for (size_t f = 0; f < readers_.size() && !stopped; ++f) {
        auto& r = readers_[f];
        capture::Packet p;
        uint64_t read = 0;
        while (r->next(p)) {
            if (stop_.load(std::memory_order_relaxed)) {
                stopped = true;
                break;
            }
            ++read;
            rte_mbuf* head = mbuf();
            if (!head) {
                stopped = true;
                break;
            }
            // The packet as one external buffer, or a chain of them past 64 KiB.
            rte_mbuf* m = head;
            uint32_t off = 0;
            for (;;) {
                const uint32_t len = std::min(p.caplen - off, kSegMax);
                auto* shinfo = static_cast<rte_mbuf_ext_shared_info*>(rte_mbuf_to_priv(m));
                shinfo->free_cb = give_back;
                shinfo->fcb_opaque = r->hold();
                rte_mbuf_ext_refcnt_set(shinfo, 1);
                rte_pktmbuf_attach_extbuf(m, const_cast<uint8_t*>(p.data + off), RTE_BAD_IOVA,
                                          static_cast<uint16_t>(len), shinfo);
                m->data_len = static_cast<uint16_t>(len);
                off += len;
                if (off >= p.caplen) break;
                rte_mbuf* next = mbuf();
                if (!next) break;
                m->next = next;
                ++head->nb_segs;
                m = next;
            }
            if (off < p.caplen) {  // stopping
                rte_pktmbuf_free(head);
                stopped = true;
                break;
            }
            head->pkt_len = p.caplen;
            *RTE_MBUF_DYNFIELD(head, ts_offset_, uint64_t*) = p.ts_ns;
            head->ol_flags |= ts_flag_;
            const uint16_t q = queues_ > 1 ? queue_of(p) : 0;
            batch[q][fill[q]++] = head;
            if (fill[q] == kBurst) flush(q);
        }
        // The buffers of the files before, which the workers have long freed, go.
        for (size_t g = 0; g < f; ++g) readers_[g]->trim();
        if (!stopped && !r->error().empty()) {
            std::string problem = files_[f] + ": stops after " + std::to_string(read) + " packets: " + r->error();
            if (!counted_) log::say(log::Level::kWarning, "weir: %s\n", problem.c_str());
            problems_.push_back(std::move(problem));  // read by others once the thread is done
        }
    }
    for (uint16_t q = 0; q < queues_; ++q)
        if (fill[q]) flush(q);
    if (stashed) rte_pktmbuf_free_bulk(stash.data(), stashed);
    if (registered) rte_thread_unregister();
    if (!stopped) stats_.done.store(true, std::memory_order_release);
}

}  // namespace weir::dpdk
