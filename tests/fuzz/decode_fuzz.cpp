// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: arbitrary bytes as a frame of every link type, decoded in the three tunnel
// modes (and with a buffer split where a multi-segment frame would split it), fed to a flow table
// with tunnel contexts that keeps everything an exporter may ask for (MACs and MPLS label,
// handshake times, size bins), then encoded as IPFIX with those elements. Must never read out of
// bounds, crash, lose a packet, count a packet in no size bin, leak a tunnel context, or end a
// flow in a record without packets or with a time that runs backwards.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "flow/flow_record.h"
#include "flow/flow_table.h"
#include "flow/tunnel_table.h"
#include "ipfix/ipfix.h"
#include "packet/decode.h"

namespace {

using namespace weir;

ipfix::Options options() {
    ipfix::Options o;
    o.biflow = true;
    o.time = ipfix::TimeUnit::kNanoseconds;
    o.tunnels = ipfix::Tunnels::kBoth;
    o.macs = o.mpls = o.rtt = o.sizes = true;
    o.direction = {0};
    return o;
}

struct Sink {
    flow::TunnelTable* tunnels;
    const flow::FlowTable* table;
    ipfix::Layout layout{options()};
    ipfix::MessageEncoder enc{1, 1452, layout};
    std::vector<uint8_t> buf = std::vector<uint8_t>(1452);
    uint64_t packets = 0;
    void on_created(const flow::FlowEntry& e) noexcept {
        if (e.key.tunnel) tunnels->acquire(e.key.tunnel);
    }
    void on_expired(const flow::FlowEntry& e, flow::EndReason why) noexcept {
        packets += e.packets();
        flow::FlowRecord r;
        flow::make_record(e, why, e.key.tunnel ? &tunnels->key(e.key.tunnel) : nullptr, table->side(e), r);
        if (r.packets() == 0 || r.fwd.packets == 0) std::abort();  // no record without packets
        for (const auto* d : {&r.fwd, &r.rev})
            if (d->packets && d->first_ns > d->last_ns) std::abort();  // time never runs backwards in a record
        for (int d = 0; d < 2; ++d) {
            uint64_t binned = 0;
            for (uint32_t b = 0; b < flow::kSizeBins; ++b) binned += r.sizes[d][b];
            if (!(r.flags & flow::FlowRecord::kHasSizes) || binned != e.c[d].packets) std::abort();
        }
        if (e.key.tunnel) tunnels->release(e.key.tunnel);
        if (!enc.started()) enc.start(buf.data());
        if (!enc.add(r)) {
            enc.finish();
            enc.start(buf.data());
            if (!enc.add(r)) std::abort();
        }
    }
};

struct State {
    flow::TunnelTable tunnels{8};
    flow::FlowTable table{[] {
        flow::TableConfig c;
        c.capacity = 64;
        c.macs = c.mpls = c.rtt = c.sizes = true;
        return c;
    }()};
};

State& state() {
    static State s;
    return s;
}

// Accounts one layer as the worker does: tunnel interned and pinned around the update.
void account(State& st, Sink& sink, const packet::Layer& l, const packet::TunnelInfo* t, uint8_t view, uint64_t ts,
             const uint8_t* macs) {
    flow::FlowTable::Prepared pk;
    uint32_t ref = 0;
    bool hi = false;
    if (t) {
        flow::TunnelKey k;
        hi = flow::make_tunnel_key(*t, k);
        ref = st.tunnels.intern(k, flow::tunnel_hash(k));
    }
    st.table.prepare(l, ref, view, pk);
    pk.tunnel_src_hi = hi;
    st.table.locate(pk);
    st.table.update(pk, l, ts, 0, sink, macs);
    if (ref) st.tunnels.release(ref);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const uint16_t kLinks[] = {0, 1, 9, 12, 50, 101, 104, 108, 113, 228, 229, 276, 105};
    State& st = state();
    Sink sink{&st.tunnels, &st.table};
    uint64_t accounted = 0;
    uint64_t ts = 1'700'000'000'000'000'000ull;
    for (const auto mode : {packet::TunnelMode::kOuter, packet::TunnelMode::kInner, packet::TunnelMode::kBoth}) {
        packet::DecodeOptions opt;
        opt.mode = mode;
        opt.want_macs = opt.want_mpls = true;
        opt.want_payload = true;
        for (uint16_t lt : kLinks) {
            std::vector<uint8_t> frame(data, data + size);  // exact-size copy: ASan sees over-reads
            packet::PacketInfo pi;
            // First as a buffer holding only part of the frame (as the first segment of a jumbo
            // frame would), then whole when a header crossed the split.
            const uint32_t split = size > 64 ? static_cast<uint32_t>(size / 2) : static_cast<uint32_t>(size);
            packet::Drop d = packet::decode(frame.data(), split, static_cast<uint32_t>(size), lt, opt, pi);
            if (pi.short_read)
                d = packet::decode(frame.data(), static_cast<uint32_t>(size), static_cast<uint32_t>(size), lt, opt, pi);
            if (pi.short_read) std::abort();  // the whole frame was at hand
            if (d != packet::Drop::kNone) continue;
            // The payload lies within the bytes decoded.
            if (pi.payload_len && static_cast<uint64_t>(pi.payload_off) + pi.payload_len > size) std::abort();
            if (pi.tunnel.depth > 0 && mode == packet::TunnelMode::kOuter) std::abort();
            if (pi.tunnel.depth > 0 && mode == packet::TunnelMode::kBoth) {
                account(st, sink, pi.outer, nullptr, flow::kViewOuterCopy, ts,
                        pi.has_outer_macs ? pi.outer_macs : nullptr);
                ++accounted;
            }
            account(st, sink, pi, pi.tunnel.depth ? &pi.tunnel : nullptr, flow::kViewPrimary, ts,
                    pi.has_macs ? pi.macs : nullptr);
            ts += 20'000'000'000ull;  // past the idle timeout: exercises expiry too
            st.table.expire(ts, 64, sink);
            ++accounted;
        }
    }
    st.table.flush(sink);
    if (sink.packets != accounted) std::abort();
    if (st.tunnels.size() != 0) std::abort();  // every context released with its last flow
    return 0;
}
