// SPDX-License-Identifier: BSD-3-Clause
#include "worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace weir {
namespace {

constexpr uint32_t kLinearBytes = 4096;  // headers of a multi-segment frame copied to decode them

const packet::DecodeOptions& default_decode() {
    static const packet::DecodeOptions d;
    return d;
}

}  // namespace

Worker::Worker(const WorkerConfig& cfg, std::vector<RxQueueRef> queues, int ts_offset, uint64_t ts_flag,
               uint64_t tsc_hz, uint64_t wall_ns0, uint64_t tsc0)
    : cfg_(cfg),
      decode_(cfg.decode ? cfg.decode : &default_decode()),
      queues_(std::move(queues)),
      qstats_(new QueueStats[queues_.size()]),
      table_(std::make_unique<flow::FlowTable>(cfg.table)),
      tunnels_(std::make_unique<flow::TunnelTable>(cfg.tunnel_contexts)),
      inspector_(cfg.inspect ? std::make_unique<inspect::Inspector>(*cfg.inspect, cfg.table.capacity) : nullptr),
      observer_(cfg.detect ? std::make_unique<detect::Observer>(*cfg.detect) : nullptr),
      linear_(new uint8_t[kLinearBytes]),
      ts_offset_(ts_offset),
      ts_flag_(ts_flag),
      tsc_hz_(tsc_hz),
      wall_ns0_(wall_ns0),
      tsc0_(tsc0) {
    sample_left_ = cfg.sample_interval ? cfg.sample_interval : 1;
    rng_ = (rte_rdtsc() ^ (0x9E3779B97F4A7C15ull * (cfg.index + 1))) | 1;
    uint32_t ring_size = 1;
    while (ring_size < cfg.buffers + 1) ring_size <<= 1;
    const std::string base = "weir_w" + std::to_string(cfg.index);
    full_ = rte_ring_create((base + "_full").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    free_ = rte_ring_create((base + "_free").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    mailbox_ = rte_ring_create_elem((base + "_cmd").c_str(), sizeof(Command), kMailbox, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (cfg.inspect && cfg.inspect->capture_packets && cfg.capture_slots) {
        uint32_t n = 1;
        while (n < cfg.capture_slots + 1) n <<= 1;
        cap_full_ = rte_ring_create((base + "_cap").c_str(), n, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        cap_free_ = rte_ring_create((base + "_capfree").c_str(), n, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (!cap_full_ || !cap_free_) throw std::runtime_error("cannot create the capture rings of worker " + base);
        cap_snaplen_ = cfg.capture_snaplen;
        const size_t slot = (sizeof(CaptureSlot) + cap_snaplen_ + 63) / 64 * 64;
        cap_mem_.reset(new uint8_t[slot * cfg.capture_slots + 64]);
        uint8_t* base_mem =
            reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(cap_mem_.get()) + 63) & ~uintptr_t{63});
        for (uint32_t i = 0; i < cfg.capture_slots; ++i) rte_ring_sp_enqueue(cap_free_, base_mem + slot * i);
    }
    if (!full_ || !free_ || !mailbox_)
        throw std::runtime_error("worker " + std::to_string(cfg.index) + ": cannot create rings");
    top_heap_.reserve(kTopMax);
    top_result_.reserve(kTopMax);
    pool_records_.reset(new flow::FlowRecord[static_cast<size_t>(cfg.buffers) * cfg.batch_records]);
    if (cfg.inspect) pool_findings_.reset(new flow::Findings[static_cast<size_t>(cfg.buffers) * cfg.batch_records]);
    pool_.resize(cfg.buffers);
    for (uint32_t i = 0; i < cfg.buffers; ++i) {
        pool_[i] =
            RecordBatch{0,
                        cfg.domain,
                        0,
                        0,
                        pool_records_.get() + static_cast<size_t>(i) * cfg.batch_records,
                        pool_findings_ ? pool_findings_.get() + static_cast<size_t>(i) * cfg.batch_records : nullptr};
        RecordBatch* p = &pool_[i];
        rte_ring_sp_enqueue(free_, p);
    }
}

Worker::~Worker() {
    rte_ring_free(cap_full_);
    rte_ring_free(cap_free_);
    rte_ring_free(full_);
    rte_ring_free(free_);
    rte_ring_free(mailbox_);
}

void Worker::connect(std::vector<rte_ring*> inbound, std::atomic<uint32_t>* rx_stopped) {
    inbound_ = std::move(inbound);
    mine_ = cfg_.index < inbound_.size() ? inbound_[cfg_.index] : nullptr;
    rx_stopped_ = rx_stopped;
}

int Worker::lcore_main(void* self) noexcept {
    static_cast<Worker*>(self)->run();
    return 0;
}

uint64_t Worker::tsc_to_ns(uint64_t tsc) const noexcept {
    const unsigned __int128 d = static_cast<unsigned __int128>(tsc - tsc0_) * 1'000'000'000u;
    return wall_ns0_ + static_cast<uint64_t>(d / tsc_hz_);
}

bool Worker::acquire_buffer() noexcept {
    void* p = nullptr;
    while (rte_ring_sc_dequeue(free_, &p) != 0) {
        // Live traffic never waits for the exporters: the records are counted as dropped.
        // A replay or the final flush waits, since nothing more arrives to be lost meanwhile.
        if (!cfg_.replay && !final_flush_) return false;
        rte_pause();
    }
    current_ = static_cast<RecordBatch*>(p);
    current_->count = 0;
    current_->packets = 0;
    current_->copy_packets = 0;
    return true;
}

void Worker::hand_off() noexcept {
    RecordBatch* b = current_;
    current_ = nullptr;
    while (rte_ring_sp_enqueue(full_, b) != 0) {
        if (!cfg_.replay && !final_flush_) {
            stats_.dropped_records.add(b->count);
            stats_.dropped_packets.add(b->packets);
            stats_.dropped_copy_packets.add(b->copy_packets);
            current_ = b;  // reuse the batch
            b->count = 0;
            b->packets = 0;
            b->copy_packets = 0;
            return;
        }
        rte_pause();
    }
    stats_.batches.add();
}

void Worker::on_expired(const flow::FlowEntry& e, flow::EndReason why) noexcept {
    const bool copy = e.key.view == flow::kViewOuterCopy;
    const bool labeled = e.state & flow::FlowTable::kLabeled;
    if (!current_ && !acquire_buffer()) {
        if (labeled) inspector_->release(table_->index_of(e));
        stats_.dropped_records.add();
        (copy ? stats_.dropped_copy_packets : stats_.dropped_packets).add(e.packets());
        if (e.key.tunnel) tunnels_->release(e.key.tunnel);
        return;
    }
    RecordBatch& b = *current_;
    if (b.count == 0) current_since_ = rte_rdtsc();
    flow::make_record(e, why, e.key.tunnel ? &tunnels_->key(e.key.tunnel) : nullptr, table_->side(e),
                      b.records[b.count]);
    if (labeled) [[unlikely]]
        inspector_->finish(table_->index_of(e), b.records[b.count], b.findings[b.count],
                           why == flow::EndReason::kActive ? flow::key_hash(e.key) : 0, clock_ns_);
    if (e.key.tunnel) tunnels_->release(e.key.tunnel);
    (copy ? b.copy_packets : b.packets) += e.packets();
    stats_.records.add();
    if (++b.count == cfg_.batch_records) hand_off();
}

uint32_t Worker::owner_of(const packet::PacketInfo& pi, uint64_t tunnel_hash) const noexcept {
    flow::FlowKey k;
    flow::canonicalize(pi.tuple, 0, pi.cvlan, flow::kViewPrimary, k);
    const uint64_t h = flow::key_hash(k) ^ (tunnel_hash * 0x9E3779B97F4A7C15ull);
    return static_cast<uint32_t>(((h >> 32) * cfg_.workers) >> 32);
}

struct Worker::Burst {
    static constexpr uint32_t kMax = 128;  // a burst of 64, each packet with its outer copy
    flow::FlowTable::Prepared prep[kMax];
    struct Item {
        const packet::Layer* layer;
        const uint8_t* macs;
        uint64_t ts;
        const uint8_t* payload;  // to inspect (plen > 0 only with inspection on)
        const rte_mbuf* m;       // the packet itself (nullptr: handed over by another worker, or an outer copy)
        uint32_t plen;
        uint16_t port;
        bool primary;  // the flow's own view (not a tunnel's outer copy): observed for detection
    } item[kMax];
    uint16_t linktype = packet::kLinkEthernet;
    uint32_t pinned[kMax];
    uint32_t n = 0, np = 0;
};

inline void Worker::add(Burst& b, const packet::Layer& l, const packet::TunnelInfo* tunnel, uint8_t view, uint64_t ts,
                        uint16_t port, const uint8_t* macs, const uint8_t* payload, uint32_t plen,
                        const rte_mbuf* m) noexcept {
    flow::FlowTable::Prepared& pk = b.prep[b.n];
    if (!tunnel) [[likely]] {
        table_->prepare(l, 0, view, pk);
    } else {
        flow::TunnelKey tk;
        const bool src_hi = flow::make_tunnel_key(*tunnel, tk);
        const uint32_t ref = tunnels_->intern(tk, flow::tunnel_hash(tk));
        // No room for another tunnel: keyed without it (counted by the tunnel table).
        if (ref) b.pinned[b.np++] = ref;
        table_->prepare(l, ref, view, pk);
        pk.tunnel_src_hi = ref && src_hi;
    }
    b.item[b.n++] = Burst::Item{&l, macs, ts, payload, m, plen, port, view == flow::kViewPrimary};
}

// A packet of a flow that is new, still being inspected or being captured (`where`: what
// update() returned).
void Worker::inspect_packet(uint32_t where, uint64_t hash, const uint8_t* payload, uint32_t plen, const rte_mbuf* m,
                            uint16_t linktype, uint64_t ts, uint16_t port) noexcept {
    const uint32_t idx = where >> 2;
    flow::FlowEntry& e = table_->entry(idx);
    if (where & 2) {  // a new flow: TCP and UDP of the flow's own view are eligible
        const uint8_t proto = e.key.tuple.proto;
        if (e.key.view == flow::kViewPrimary && (proto == 6 || proto == 17)) {
            // A conversation that an active timeout split goes on with what was found in it.
            if (inspector_->restore(idx, hash, ts, table_->config().idle_ns))
                e.state |= flow::FlowTable::kLabeled;
            else
                e.state |= flow::FlowTable::kInspecting;
        }
    }
    if (plen && (e.state & flow::FlowTable::kInspecting)) {
        if (!(e.state & flow::FlowTable::kLabeled)) {
            inspector_->start(idx);
            e.state |= flow::FlowTable::kLabeled;
        }
        const int dir = static_cast<int>(where & 1);
        const auto r =
            inspector_->scan(idx, dir, e.key.tuple.proto, e.key.tuple.sport, e.key.tuple.dport, payload, plen);
        if (r != inspect::Inspector::Result::kMore) {
            e.state &= static_cast<uint8_t>(~flow::FlowTable::kInspecting);
            if (r == inspect::Inspector::Result::kDoneEmpty) {
                inspector_->release(idx);
                e.state &= static_cast<uint8_t>(~flow::FlowTable::kLabeled);
            }
        }
        if (cap_full_ && !(e.state & flow::FlowTable::kCapturing) && (e.state & flow::FlowTable::kLabeled) &&
            inspector_->label(idx).capture_left)
            e.state |= flow::FlowTable::kCapturing;  // from this packet on
    }
    if (e.state & flow::FlowTable::kCapturing) {
        bool more = false;
        if (inspector_->capture_take(idx, more)) capture(e, inspector_->label(idx).capture_rule, m, linktype, ts, port);
        if (!more) e.state &= static_cast<uint8_t>(~flow::FlowTable::kCapturing);
    }
}

void Worker::capture(const flow::FlowEntry& e, uint16_t rule, const rte_mbuf* m, uint16_t linktype, uint64_t ts,
                     uint16_t port) noexcept {
    void* p = nullptr;
    if (!m || rte_ring_sc_dequeue(cap_free_, &p) != 0) {
        stats_.capture_dropped.add();  // the writer is behind (or the packet came from another worker)
        return;
    }
    auto* slot = static_cast<CaptureSlot*>(p);
    slot->ts_ns = ts;
    slot->wire_len = m->pkt_len;
    slot->cap_len = m->pkt_len < cap_snaplen_ ? m->pkt_len : cap_snaplen_;
    slot->rule = rule;
    slot->linktype = linktype;
    slot->port = port;
    slot->reserved = 0;
    slot->tuple = e.tuple(0);
    const void* d = rte_pktmbuf_read(m, 0, slot->cap_len, slot->data());
    if (!d) {
        slot->cap_len = m->data_len < cap_snaplen_ ? m->data_len : cap_snaplen_;
        d = rte_pktmbuf_mtod(m, const void*);
    }
    if (d != slot->data()) std::memcpy(slot->data(), d, slot->cap_len);
    rte_ring_sp_enqueue(cap_full_, slot);  // never full: it has room for every slot
    stats_.captured.add();
}

// What the flow table said of a packet, for detection: a new flow's first packet, the responder's
// first answer, the initiator's ACK that completes a TCP handshake.
inline void Worker::observe(const packet::Layer& l, uint32_t where, uint64_t ts, uint64_t dest_hash) noexcept {
    const flow::FlowEntry& e = table_->entry(where >> 2);
    const bool answer = (where & 3) == 1 && e.c[1].packets == 1;
    const bool completion = (where & 3) == 0 && l.tuple.proto == 6 && e.c[0].packets == 2 &&
        (l.tcp_flags & 0x12) == 0x10 && (e.a[1].tcp_flags & 0x02);
    observer_->packet(l, detect::Seen{(where & 1) == 0, (where & 2) != 0, answer, completion}, ts, dest_hash);
}

void Worker::account(Burst& b) noexcept {
    uint64_t dest_hash[Burst::kMax];
    for (uint32_t i = 0; i < b.n; ++i) table_->fetch(b.prep[i]);
    for (uint32_t i = 0; i < b.n; ++i) {
        table_->locate(b.prep[i]);
        if (observer_) {
            dest_hash[i] = detect::Observer::dest_hash(*b.item[i].layer);
            observer_->prefetch(dest_hash[i]);
        }
    }
    for (uint32_t i = 0; i < b.n; ++i) {
        const uint32_t where =
            table_->update(b.prep[i], *b.item[i].layer, b.item[i].ts, b.item[i].port, *this, b.item[i].macs);
        if (observer_ && b.item[i].primary) observe(*b.item[i].layer, where, b.item[i].ts, dest_hash[i]);
        if (inspect_on_) [[unlikely]] {
            const Burst::Item& it = b.item[i];
            const uint8_t st = table_->entry(where >> 2).state;
            if ((where & 2) || (st & (flow::FlowTable::kInspecting | flow::FlowTable::kCapturing)))
                inspect_packet(where, b.prep[i].hash, it.payload, it.plen, it.m, b.linktype, it.ts, it.port);
        }
    }
    for (uint32_t i = 0; i < b.np; ++i) tunnels_->release(b.pinned[i]);
}

void Worker::send_handoffs(Handoff* out, const uint32_t* owner, uint32_t n) noexcept {
    uint32_t same = 1;
    while (same < n && owner[same] == owner[0]) ++same;
    if (same == n) {  // one owner (always so with two workers): no regrouping
        enqueue_handoffs(owner[0], out, n);
        return;
    }
    // Grouped by owner (a stable counting sort), so each owner's ring takes one burst.
    uint32_t count[kMaxHandoffTargets] = {};
    for (uint32_t i = 0; i < n; ++i) ++count[owner[i]];
    uint32_t start[kMaxHandoffTargets];
    uint32_t pos = 0;
    for (uint32_t w = 0; w < cfg_.workers; ++w) start[w] = pos, pos += count[w];
    Handoff sorted[64];
    uint32_t fill[kMaxHandoffTargets];
    for (uint32_t w = 0; w < cfg_.workers; ++w) fill[w] = start[w];
    for (uint32_t i = 0; i < n; ++i) sorted[fill[owner[i]]++] = out[i];
    for (uint32_t w = 0; w < cfg_.workers; ++w)
        if (count[w]) enqueue_handoffs(w, sorted + start[w], count[w]);
}

void Worker::enqueue_handoffs(uint32_t owner, const Handoff* h, uint32_t n) noexcept {
    uint32_t done = 0;
    for (;;) {
        done += rte_ring_mp_enqueue_burst_elem(inbound_[owner], h + done, sizeof(Handoff), n - done, nullptr);
        if (done == n || !cfg_.replay) break;
        // A replay loses nothing: make room by taking in what the others handed to us.
        drain_handoffs();
        rte_pause();
    }
    stats_.handed_out.add(done);
    stats_.handoff_dropped.add(n - done);  // live traffic never waits: counted lost
}

unsigned Worker::drain_handoffs() noexcept {
    if (!mine_) return 0;
    // Up to four bursts a call: the others together may hand over more than one burst meanwhile.
    unsigned total = 0;
    for (int round = 0; round < 4; ++round) {
        Handoff in[64];
        const unsigned n = rte_ring_sc_dequeue_burst_elem(mine_, in, sizeof(Handoff), 64, nullptr);
        if (n == 0) break;
        stats_.handed_in.add(n);
        Burst b;
        for (unsigned i = 0; i < n; ++i) {
            const Handoff& h = in[i];
            if (h.ts_ns > clock_ns_) clock_ns_ = h.ts_ns;
            add(b, h.layer, &h.tunnel, flow::kViewPrimary, h.ts_ns, h.port, h.has_macs ? h.macs : nullptr);
        }
        account(b);
        total += n;
        if (n < 64) break;
    }
    return total;
}

// Packet sampling: the packets of a burst that are kept go to `kept`. Deterministic: every
// Nth packet of the worker. Random: each packet with probability 1/N, drawn as geometric gaps
// between kept packets (one random number per kept packet, not per packet).
uint16_t Worker::sample(rte_mbuf** pkts, uint16_t n, rte_mbuf** kept, uint64_t& skipped_bytes) noexcept {
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (--sample_left_ != 0) {
            skipped_bytes += pkts[i]->pkt_len;
            continue;
        }
        kept[k++] = pkts[i];
        if (!cfg_.sample_random) {
            sample_left_ = cfg_.sample_interval;
            continue;
        }
        rng_ ^= rng_ >> 12;
        rng_ ^= rng_ << 25;
        rng_ ^= rng_ >> 27;
        const double u = static_cast<double>((rng_ * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;  // [0, 1)
        const double gap = std::floor(std::log1p(-u) / std::log1p(-1.0 / cfg_.sample_interval));
        sample_left_ = gap >= 4e9 ? 4'000'000'000u : static_cast<uint32_t>(gap) + 1;
    }
    stats_.sampled_out.add(n - k);
    return k;
}

void Worker::process_burst(const RxQueueRef& q, QueueStats& qs, rte_mbuf** pkts, uint16_t n, uint64_t now_ns) noexcept {
    const uint16_t received = n;
    uint64_t skipped_bytes = 0;
    rte_mbuf* kept[64];
    if (cfg_.sample_interval > 1) [[unlikely]] {
        n = sample(pkts, n, kept, skipped_bytes);
        pkts = kept;
    }
    packet::PacketInfo info[64];
    Burst b;
    b.linktype = q.linktype;
    Handoff out[64];
    uint32_t owner[64];
    uint32_t no = 0;
    uint64_t bytes = 0;
    const packet::DecodeOptions& opt = *decode_;
    const bool both = opt.mode == packet::TunnelMode::kBoth;
    // The frames' first lines (and the time stamps' line of the buffers, where the port stamps
    // them), for the whole burst in one tight loop: they were written by a NIC's DMA or a replay's
    // reader on another core, and arrive together while the first frames decode, instead of one
    // miss after another.
    for (uint16_t i = 0; i < n; ++i) {
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], const void*));
        if (q.ts_ns_per_unit) rte_mbuf_prefetch_part2(pkts[i]);
    }
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        bytes += m->pkt_len;
        const uint64_t ts = q.ts_ns_per_unit && (m->ol_flags & ts_flag_)
            ? *RTE_MBUF_DYNFIELD(m, ts_offset_, uint64_t*) * q.ts_ns_per_unit
            : now_ns;
        packet::PacketInfo& pi = info[i];
        const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
        packet::Drop d = packet::decode(frame, m->data_len, m->pkt_len, q.linktype, opt, pi);
        // Payload is inspected in the frame's first segment; a frame decoded from a copy of its
        // headers (which the next one's overwrites) is not.
        bool linear = !inspect_on_;
        if (m->nb_segs > 1) [[unlikely]] {
            stats_.multi_segment.add();
            if (pi.short_read) {
                // A header crosses into the next segment: decode a contiguous copy of the first bytes
                // the segments really hold (a PMD may say more in pkt_len).
                uint32_t held = 0;
                for (const rte_mbuf* s = m; s && held < kLinearBytes; s = s->next) held += s->data_len;
                const uint32_t len = std::min({m->pkt_len, held, kLinearBytes});
                const auto* p = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, linear_.get()));
                if (p) d = packet::decode(p, len, m->pkt_len, q.linktype, opt, pi);
                linear = true;
                stats_.linearized.add();
            }
        }
        if (d != packet::Drop::kNone) {
            stats_.drops[static_cast<size_t>(d)].add();
            continue;
        }
        if (ts > clock_ns_) clock_ns_ = ts;
        if (pi.unusual) [[unlikely]] {
            if (pi.l4_truncated) stats_.l4_truncated.add();
            if (pi.ipv6_ext_limit) stats_.ipv6_ext_limit.add();
            if (pi.stop != packet::TunnelStop::kNone) stats_.tunnel_stops[static_cast<size_t>(pi.stop)].add();
        }
        if (pi.tunnel.depth == 0) [[likely]] {
            add(b, pi, nullptr, flow::kViewPrimary, ts, q.port, pi.has_macs ? pi.macs : nullptr,
                linear ? nullptr : frame + pi.payload_off, linear ? 0 : pi.payload_len, m);
            continue;
        }
        stats_.tunneled[static_cast<size_t>(pi.tunnel.type)].add();
        if (both) {  // the tunnel's own flow, accounted where its outer headers arrived
            add(b, pi.outer, nullptr, flow::kViewOuterCopy, ts, q.port, pi.has_outer_macs ? pi.outer_macs : nullptr);
            stats_.outer_copies.add();
        }
        if (cfg_.handoff && pi.tunnel.entropy) {
            flow::TunnelKey tk;
            flow::make_tunnel_key(pi.tunnel, tk);
            const uint32_t o = owner_of(pi, flow::tunnel_hash(tk));
            if (o != cfg_.index) {
                Handoff& h = out[no];
                h.layer = pi;
                h.tunnel = pi.tunnel;
                h.ts_ns = ts;
                h.port = q.port;
                h.has_macs = pi.has_macs;
                if (pi.has_macs) std::memcpy(h.macs, pi.macs, 16);
                owner[no++] = o;
                continue;
            }
        }
        add(b, pi, &pi.tunnel, flow::kViewPrimary, ts, q.port, pi.has_macs ? pi.macs : nullptr,
            linear ? nullptr : frame + pi.payload_off, linear ? 0 : pi.payload_len, m);
    }
    qs.packets.add(received);
    qs.bytes.add(bytes + skipped_bytes);
    stats_.rx_packets.add(received);
    stats_.rx_bytes.add(bytes + skipped_bytes);
    account(b);
    if (no) send_handoffs(out, owner, no);
}

void Worker::run() noexcept {
    table_->initialize();  // first touch on this lcore: the table lives on this worker's node
    ready_.store(true, std::memory_order_release);
    rte_mbuf* pkts[64];
    const uint16_t burst = static_cast<uint16_t>(cfg_.burst > 64 ? 64 : cfg_.burst);
    const bool peers = mine_ != nullptr;
    while (!stopping_) {
        const uint64_t t0 = rte_rdtsc();
        const uint64_t now_ns = tsc_to_ns(t0);
        bool any = false;
        for (size_t i = 0; i < queues_.size(); ++i) {
            const RxQueueRef& q = queues_[i];
            const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, burst);
            if (n == 0) continue;
            any = true;
            process_burst(q, qstats_[i], pkts, n, now_ns);
            rte_pktmbuf_free_bulk(pkts, n);
        }
        if (peers && drain_handoffs()) any = true;
        housekeeping(now_ns, t0);
        const uint64_t t1 = rte_rdtsc();
        stats_.total_cycles.add(t1 - t0);
        if (any) stats_.busy_cycles.add(t1 - t0);
    }
    if (rx_stopped_) {
        // Receiving has stopped here; the others may still hand over what they received before
        // they stopped. Once every worker has stopped receiving, nothing more can come.
        rx_stopped_->fetch_add(1, std::memory_order_acq_rel);
        while (rx_stopped_->load(std::memory_order_acquire) < cfg_.workers) {
            drain_handoffs();
            rte_pause();
        }
        while (drain_handoffs()) {}
    }
    finish();
    done_.store(true, std::memory_order_release);
}

bool Worker::post(const Command& c) noexcept {
    return rte_ring_mp_enqueue_elem(mailbox_, const_cast<Command*>(&c), sizeof(Command)) == 0;
}

bool Worker::request_stop() noexcept { return post(Command{Command::Kind::kStop, 0, 0, 0, 0, 0, 0, nullptr}); }

void Worker::attach_engine(inspect::Engine* e) noexcept {
    if (!inspector_) return;
    inspector_->attach(e);
    inspect_on_ = e != nullptr;
}

bool Worker::set_engine(inspect::Engine* e, uint64_t generation) noexcept {
    return post(Command{Command::Kind::kEngine, 0, 0, 0, generation, 0, 0, e});
}

uint32_t Worker::request_top(bool by_packets, uint32_t n) noexcept {
    uint32_t ticket = top_tickets_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (ticket == 0) ticket = top_tickets_.fetch_add(1, std::memory_order_relaxed) + 1;  // 0 means none
    const Command c{
        Command::Kind::kTop, ticket, n < 1 ? 1 : n > kTopMax ? kTopMax : n, by_packets ? 1u : 0u, 0, 0, 0, nullptr};
    return post(c) ? ticket : 0;
}

bool Worker::set_timeouts(uint64_t idle_ns, uint64_t active_ns, uint64_t tcp_end_ns) noexcept {
    return post(Command{Command::Kind::kTimeouts, 0, 0, 0, idle_ns, active_ns, tcp_end_ns, nullptr});
}

void Worker::take_commands() noexcept {
    Command c;
    while (rte_ring_sc_dequeue_elem(mailbox_, &c, sizeof(Command)) == 0) {
        switch (c.kind) {
            case Command::Kind::kStop: stopping_ = true; break;
            case Command::Kind::kTimeouts: table_->set_timeouts(c.idle_ns, c.active_ns, c.tcp_end_ns); break;
            case Command::Kind::kEngine:
                // Between bursts: no stream of the old engine is in use.
                attach_engine(c.engine);
                engine_gen_.store(c.idle_ns, std::memory_order_release);
                break;
            case Command::Kind::kTop:
                // A newer request replaces a scan in progress: its requester has given up.
                top_scanning_ = c.ticket;
                top_by_packets_ = c.by_packets != 0;
                top_n_ = c.n;
                top_pos_ = 0;
                top_heap_.clear();
                break;
        }
    }
}

uint32_t Worker::ring_occupancy() const noexcept { return rte_ring_count(full_); }

// One slice of a top-flows walk: 4096 entries per loop iteration, a min-heap of size n
// (no allocation: both vectors were reserved at start).
void Worker::top_step() noexcept {
    const bool by_packets = top_by_packets_;
    auto weight = [by_packets](const TopFlow& f) { return by_packets ? f.packets : f.octets; };
    auto lighter = [&](const TopFlow& a, const TopFlow& b) { return weight(a) > weight(b); };
    top_pos_ = table_->scan(top_pos_, 4096, [&](const flow::FlowEntry& e) {
        for (int d = 0; d < 2; ++d) {
            if (!e.c[d].packets) continue;
            const flow::TunnelKey* tk = e.key.tunnel ? &tunnels_->key(e.key.tunnel) : nullptr;
            const TopFlow f{
                e.tuple(d),
                e.c[d].packets,
                e.c[d].octets,
                e.c[d].first_ns,
                e.c[d].last_ns,
                tk ? tk->id : 0,
                tk ? tk->type : uint8_t{0},
                e.key.view == flow::kViewOuterCopy,
                e.key.cvlan,
                (e.state & flow::FlowTable::kLabeled) ? inspector_->label(table_->index_of(e)).app : uint16_t{0}};
            if (top_heap_.size() < top_n_) {
                top_heap_.push_back(f);
                std::push_heap(top_heap_.begin(), top_heap_.end(), lighter);
            } else if (weight(f) > weight(top_heap_.front())) {
                std::pop_heap(top_heap_.begin(), top_heap_.end(), lighter);
                top_heap_.back() = f;
                std::push_heap(top_heap_.begin(), top_heap_.end(), lighter);
            }
        }
    });
    if (top_pos_ >= table_->capacity()) {
        top_result_.assign(top_heap_.begin(), top_heap_.end());
        top_done_.store(top_scanning_, std::memory_order_release);
        top_scanning_ = 0;
    }
}

void Worker::housekeeping(uint64_t now_ns, uint64_t now_tsc) noexcept {
    if (!rte_ring_empty(mailbox_)) [[unlikely]]
        take_commands();
    if (top_scanning_) [[unlikely]]
        top_step();
    // Live ports: time moves on without packets too, so idle flows expire.
    if (!cfg_.replay && now_ns > clock_ns_) clock_ns_ = now_ns;
    table_->expire(clock_ns_, 256, *this);
    if (observer_) observer_->roll(clock_ns_);
    if (current_ && current_->count && now_tsc - current_since_ > cfg_.max_delay_cycles) hand_off();
}

void Worker::finish() noexcept {
    final_flush_ = true;
    table_->flush(*this);
    if (current_ && current_->count) hand_off();
    if (observer_) observer_->finish();
}

}  // namespace weir
