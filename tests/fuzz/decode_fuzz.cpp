// libFuzzer target: arbitrary bytes as a frame of every link type, decoded and fed to a flow
// table, then encoded as IPFIX. Must never read out of bounds, crash or lose a packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "flow/flow_table.h"
#include "ipfix/ipfix.h"
#include "packet/decode.h"

namespace {

struct Sink {
    weir::ipfix::MessageEncoder enc{1, 1452};
    std::vector<uint8_t> buf = std::vector<uint8_t>(1452);
    uint64_t packets = 0;
    void on_created(const weir::flow::FlowEntry&) noexcept {}
    void on_expired(const weir::flow::FlowEntry& e, weir::flow::EndReason why) noexcept {
        packets += e.dir(0).packets + e.dir(1).packets;
        weir::flow::FlowRecord r;
        weir::flow::make_record(e, why, r);
        if (!enc.started()) enc.start(buf.data());
        if (!enc.add(r)) {
            enc.finish();
            enc.start(buf.data());
            if (!enc.add(r)) std::abort();
        }
    }
};

weir::flow::FlowTable& table() {
    static weir::flow::FlowTable t([] {
        weir::flow::TableConfig c;
        c.capacity = 64;
        return c;
    }());
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const uint16_t kLinks[] = {0, 1, 12, 101, 108, 113, 228, 229, 276, 105};
    Sink sink;
    uint64_t accounted = 0;
    uint64_t ts = 1'700'000'000'000'000'000ull;
    for (uint16_t lt : kLinks) {
        std::vector<uint8_t> frame(data, data + size);  // exact-size copy: ASan sees over-reads
        weir::packet::PacketInfo pi;
        if (weir::packet::decode(frame.data(), static_cast<uint32_t>(size), lt, pi) != weir::packet::Drop::kNone)
            continue;
        weir::flow::FlowTable::Prepared pk;
        table().prepare(pi, pk);
        table().update(pk, pi, ts, 0, sink);
        ts += 20'000'000'000ull;  // past the idle timeout: exercises expiry too
        table().expire(ts, 64, sink);
        ++accounted;
    }
    table().flush(sink);
    if (sink.packets != accounted) std::abort();
    return 0;
}
