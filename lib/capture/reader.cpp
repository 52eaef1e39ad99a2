// SPDX-License-Identifier: BSD-3-Clause
#include "capture/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace weir::capture {
namespace {

constexpr uint32_t kMagicUs = 0xa1b2c3d4;
constexpr uint32_t kMagicNs = 0xa1b23c4d;
constexpr uint32_t kMagicKuznetzov = 0xa1b2cd34;
constexpr uint32_t kBlockShb = 0x0a0d0d0a;
constexpr uint32_t kByteOrder = 0x1a2b3c4d;
constexpr uint32_t kBlockIdb = 1;
constexpr uint32_t kBlockPb = 2;  // obsolete packet block
constexpr uint32_t kBlockSpb = 3;
constexpr uint32_t kBlockEpb = 6;
constexpr uint32_t kInitialMaxBlock = 16 * 1024 * 1024;
constexpr uint32_t kShbInsaneMax = 1024 * 1024;  // libpcap's bound on the first section header

uint32_t load32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

std::string num(uint64_t v) { return std::to_string(v); }

}  // namespace

int linktype_to_dlt(uint32_t lt) noexcept {
    // The LINKTYPE_ values that differ from their DLT_ values on Linux.
    switch (lt) {
        case 100: return 11;   // ATM_RFC1483
        case 101: return 12;   // RAW
        case 102: return 15;   // SLIP_BSDOS
        case 103: return 16;   // PPP_BSDOS
        case 106: return 19;   // ATM_CLIP
        case 50: return 50;    // PPP_HDLC
        case 51: return 51;    // PPP_ETHER
        case 147: return 147;  // USER0 (identity from here on)
        default: return static_cast<int>(lt);
    }
}

uint32_t max_snaplen_for_dlt(int dlt) noexcept {
    switch (dlt) {
        case 231: return 128 * 1024 * 1024;  // DBUS
        case 279: return 8 * 1024 * 1024;    // EBHSCR
        case 249: return 1024 * 1024;        // USBPCAP
        default: return 262144;
    }
}

// A file's snapshot length as libpcap 1.10 takes it: 0 and values past INT_MAX mean the link
// type's maximum; anything else stands, even past that maximum.
static uint32_t adjust_snapshot(int dlt, uint32_t snap) noexcept {
    return snap == 0 || snap > 0x7fffffffu ? max_snaplen_for_dlt(dlt) : snap;
}

// Opens a capture file for reading; returns its descriptor and sets `size`. Throws with the
// reason when it cannot be opened or is not a regular file.
static int open_regular(const std::string& path, size_t& size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::strerror(errno));
    struct stat st {};
    const bool stat_failed = fstat(fd, &st) != 0;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        const int err = stat_failed ? errno : 0;
        ::close(fd);
        throw std::runtime_error(err ? std::strerror(err) : "not a regular file");
    }
    size = static_cast<size_t>(st.st_size);
    return fd;
}

CaptureReader::CaptureReader(const std::string& path) {
    const int fd = open_regular(path, size_);
    if (size_ > 0) {
        void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw std::runtime_error(std::string("cannot map: ") + std::strerror(err));
        }
        madvise(m, size_, MADV_SEQUENTIAL);
        base_ = static_cast<const uint8_t*>(m);
        mapped_ = true;
    }
    ::close(fd);
    try {
        open();
    } catch (...) {
        if (mapped_) munmap(const_cast<uint8_t*>(base_), size_);
        throw;
    }
}

CaptureReader::CaptureReader(const std::string& path, Streamed, size_t piece) : stream_(true) {
    fd_ = open_regular(path, size_);
    posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
    try {
        open();
    } catch (...) {
        ::close(fd_);
        throw;
    }
    big_piece_ = piece < 4096 ? 4096 : piece;
    piece_ = big_piece_;
}

CaptureReader::CaptureReader(const uint8_t* data, size_t size) : base_(data), size_(size) { open(); }

CaptureReader::~CaptureReader() {
    if (mapped_) munmap(const_cast<uint8_t*>(base_), size_);
    if (fd_ >= 0) ::close(fd_);
}

CaptureReader::Chunk::~Chunk() { std::free(data); }

// The window moves to [off, off + n) and on: into a free buffer large enough (or a new one), with
// what the old window holds of it copied over and the rest read from the file. The old buffer is
// left to the packets that hold it.
const uint8_t* CaptureReader::refill(uint64_t off, uint64_t n) noexcept {
    const uint64_t want = std::max<uint64_t>(n, std::min<uint64_t>(piece_, size_ - off));  // a small file: its size
    Chunk* c = nullptr;
    for (auto& k : chunks_)
        if (k.get() != cur_ && k->cap >= want && k->refs.load(std::memory_order_acquire) == 0) {
            c = k.get();
            break;
        }
    if (!c) {
        constexpr uint64_t kHuge = 2u << 20;
        const uint64_t align = want >= kHuge ? kHuge : 4096;
        try {
            auto k = std::make_unique<Chunk>();
            k->cap = static_cast<size_t>((want + align - 1) / align * align);
            k->data = static_cast<uint8_t*>(std::aligned_alloc(static_cast<size_t>(align), k->cap));
            if (!k->data) throw std::bad_alloc();
            if (align == kHuge) madvise(k->data, k->cap, MADV_HUGEPAGE);  // few pages: few TLB entries
            c = k.get();
            chunks_.push_back(std::move(k));
        } catch (...) {
            fail("out of memory for a read buffer of " + num(want) + " bytes");
            return nullptr;
        }
    }
    uint64_t have = 0;
    if (cur_ && off >= win_off_ && off < win_off_ + win_len_) {
        have = win_off_ + win_len_ - off;
        std::memcpy(c->data, cur_->data + (off - win_off_), have);
    }
    const uint64_t goal = std::min<uint64_t>(c->cap, size_ - off);
    while (have < n) {
        const ssize_t r = pread(fd_, c->data + have, goal - have, static_cast<off_t>(off + have));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fail(r < 0 ? std::string("error reading dump file: ") + std::strerror(errno)
                       : std::string("the file became shorter while it was read"));
            return nullptr;
        }
        have += static_cast<uint64_t>(r);
    }
    c->holds = 0;
    c->refs.store(kHeld, std::memory_order_relaxed);
    if (cur_) cur_->refs.fetch_sub(kHeld - cur_->holds, std::memory_order_acq_rel);
    cur_ = c;
    win_off_ = off;
    win_len_ = have;
    return c->data;
}

void CaptureReader::drop_window() noexcept {
    if (cur_) cur_->refs.fetch_sub(kHeld - cur_->holds, std::memory_order_acq_rel);
    cur_ = nullptr;
    win_len_ = 0;
    trim();
}

void CaptureReader::trim() noexcept {
    std::erase_if(chunks_, [this](const std::unique_ptr<Chunk>& k) {
        return k.get() != cur_ && k->refs.load(std::memory_order_acquire) == 0;
    });
}

void* CaptureReader::hold() noexcept {
    if (!cur_) return nullptr;
    ++cur_->holds;
    return cur_;
}

void CaptureReader::release(void* token) noexcept {
    if (token) static_cast<Chunk*>(token)->refs.fetch_sub(1, std::memory_order_release);
}

uint32_t CaptureReader::u32(const uint8_t* p) const noexcept {
    const uint32_t v = load32(p);
    return swapped_ ? __builtin_bswap32(v) : v;
}

uint16_t CaptureReader::u16(const uint8_t* p) const noexcept {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return swapped_ ? __builtin_bswap16(v) : v;
}

bool CaptureReader::fail(const std::string& why) noexcept {
    try {
        error_ = why;
    } catch (...) {
        error_.clear();
    }
    pos_ = size_;
    return false;
}

void CaptureReader::open() {
    auto refuse = [](const std::string& why) { throw std::runtime_error(why); };
    if (size_ < 4) refuse("truncated dump file; tried to read 4 file header bytes, only got " + num(size_));
    const uint8_t* head = window(0, std::min<uint64_t>(size_, 24));
    if (!head) refuse(error_);
    const uint32_t m = load32(head);
    if (m == kBlockShb) {
        ng_ = true;
        uint32_t type, len;
        const uint8_t* body;
        if (size_ < 12) refuse("truncated pcapng dump file; tried to read 12 header bytes, only got " + num(size_));
        const uint32_t bom = load32(head + 8);
        if (bom == kByteOrder)
            swapped_ = false;
        else if (bom == __builtin_bswap32(kByteOrder))
            swapped_ = true;
        else
            refuse("unknown file format");
        max_block_ = kInitialMaxBlock;
        pos_ = 0;
        // The first section header is read as libpcap reads it: its length within 28 bytes and
        // 1 MiB, and neither a multiple of 4 nor the trailer's copy is asked for.
        len = u32(head + 4);
        if (len < 28 || len > kShbInsaneMax)
            refuse("Section Header Block in pcapng dump file has invalid length 28 < _" + num(len) + "_ < " +
                   num(kShbInsaneMax) + " (BT_SHB_INSANE_MAX)");
        if (size_ < len)
            refuse("truncated pcapng dump file; tried to read " + num(len - 12) + " bytes, only got " +
                   num(size_ - 12));
        const uint8_t* shb = window(0, len);
        if (!shb) refuse(error_);
        body = shb + 8;
        pos_ = len;
        if (!ng_shb(body, len, true)) refuse(error_);
        // libpcap reads up to the first interface description before it returns the handle, and
        // passes over any other block before it, a section header too.
        for (;;) {
            if (!ng_block(type, len, body))
                refuse(error_.empty() ? "the capture file has no Interface Description Blocks" : error_);
            if (type == kBlockIdb) {
                if (!ng_idb(body, len)) refuse(error_);
                first_iface_ = ifaces_.front();
                break;
            }
            if (type == kBlockEpb || type == kBlockSpb || type == kBlockPb)
                refuse("the capture file has a packet block before any Interface Description Blocks");
        }
        start_ = pos_;
        return;
    }
    if (m == kMagicUs || m == kMagicNs || m == kMagicKuznetzov)
        swapped_ = false;
    else if (__builtin_bswap32(m) == kMagicUs || __builtin_bswap32(m) == kMagicNs ||
             __builtin_bswap32(m) == kMagicKuznetzov)
        swapped_ = true;
    else
        refuse("unknown file format");
    if (size_ < 24) refuse("truncated dump file; tried to read 24 file header bytes, only got " + num(size_));
    const uint32_t magic = swapped_ ? __builtin_bswap32(m) : m;
    nsec_ = magic == kMagicNs;
    const uint16_t vmaj = u16(head + 4), vmin = u16(head + 6);
    if (vmaj < 2) refuse("archaic pcap savefile format");
    // Versions 2.0 to 2.4, and DG/UX tcpdump's 543.0: what libpcap reads.
    if (!((vmaj == 2 && vmin <= 4) || (vmaj == 543 && vmin == 0)))
        refuse("unsupported pcap savefile version " + num(vmaj) + "." + num(vmin));
    if (vmaj == 2)
        lengths_swapped_ = vmin < 3 ? 1 : vmin == 3 ? 2 : 0;
    else if (vmaj == 543)
        lengths_swapped_ = 1;
    linktype_ = linktype_to_dlt(u32(head + 20) & 0x03FFFFFF);
    const uint32_t snap = u32(head + 16);
    snapshot_ = adjust_snapshot(linktype_, snap);
    if (magic == kMagicKuznetzov) {
        lengths_swapped_ = lengths_swapped_ | 4;  // 24-byte record headers
        // That patched tcpdump may have captured in cooked mode, with a made-up 14-byte Ethernet
        // header added to up to a snapshot length of data: libpcap allows for it.
        if (linktype_ == 1) snapshot_ = snapshot_ <= 0x7fffffffu - 14 ? snapshot_ + 14 : 0x7fffffffu;
    }
    start_ = pos_ = 24;
}

void CaptureReader::rewind() noexcept {
    error_.clear();
    populated_ = prefetched_ = 0;
    if (stream_) drop_window();
    pos_ = start_;
    if (ng_) ifaces_.assign(1, first_iface_);
}

// The mapping's page tables are filled a window ahead of the reading position, one system call
// per window, instead of one page fault per few pages (which costs microseconds each in a VM).
void CaptureReader::populate() noexcept {
    constexpr uint64_t kWindow = 32 << 20;
    const uint64_t from = populated_, to = std::min<uint64_t>(size_, pos_ + kWindow);
    populated_ = to;
    if (!mapped_ || to <= from) return;
    const uint64_t page = 4096, start = from & ~(page - 1);
#ifdef MADV_POPULATE_READ
    if (madvise(const_cast<uint8_t*>(base_) + start, to - start, MADV_POPULATE_READ) == 0) return;
#endif
    for (uint64_t at = start; at < to; at += page) (void)*static_cast<const volatile uint8_t*>(base_ + at);
}

bool CaptureReader::next(Packet& p) noexcept {
    if (stream_) {
        const bool got = ng_ ? next_ng(p) : next_pcap(p);
        if (!got) drop_window();
        return got;
    }
    if (pos_ + (1 << 20) > populated_ && populated_ < size_) [[unlikely]]
        populate();
    // The file is read front to back: ask for the lines a few packets on while this one is read
    // (a record's header says where the next begins, so the hardware cannot run ahead alone).
    if (prefetched_ < pos_) prefetched_ = pos_ & ~uint64_t{63};
    const uint64_t ahead = std::min<uint64_t>(size_, pos_ + 8192);
    for (; prefetched_ < ahead; prefetched_ += 64) __builtin_prefetch(base_ + prefetched_);
    return ng_ ? next_ng(p) : next_pcap(p);
}

bool CaptureReader::next_pcap(Packet& p) noexcept {
    const uint32_t hdr = (lengths_swapped_ & 4) ? 24 : 16;
    const uint64_t left = size_ - pos_;
    if (left == 0) return false;
    if (left < hdr)
        return fail("truncated dump file; tried to read " + num(hdr) + " header bytes, only got " + num(left));
    const uint8_t* h = window(pos_, hdr);
    if (!h) return false;
    const uint32_t sec = u32(h), frac = u32(h + 4);
    uint32_t caplen = u32(h + 8), len = u32(h + 12);
    const int ls = lengths_swapped_ & 3;
    if (ls == 1 || (ls == 2 && caplen > len)) std::swap(caplen, len);
    if (caplen > max_snaplen_for_dlt(linktype_)) {
        if (caplen > snapshot_)
            return fail("invalid packet capture length " + num(caplen) + ", bigger than snaplen of " + num(snapshot_));
        return fail("invalid packet capture length " + num(caplen) + ", bigger than maximum of " +
                    num(max_snaplen_for_dlt(linktype_)));
    }
    if (left - hdr < caplen)
        return fail("truncated dump file; tried to read " + num(caplen) + " captured bytes, only got " +
                    num(left - hdr));
    h = window(pos_, hdr + caplen);
    if (!h) return false;
    p.data = h + hdr;
    p.caplen = caplen > snapshot_ ? snapshot_ : caplen;
    p.wirelen = len;
    p.ts_ns = static_cast<uint64_t>(sec) * 1'000'000'000ull + (nsec_ ? frac : static_cast<uint64_t>(frac) * 1000);
    pos_ += hdr + caplen;
    return true;
}

// One pcapng block at pos_: its type, total length and body (after type and length). False at
// the end of the file (error_ empty) or for a block libpcap refuses.
bool CaptureReader::ng_block(uint32_t& type, uint32_t& len, const uint8_t*& body) noexcept {
    const uint64_t left = size_ - pos_;
    if (left == 0) return false;
    if (left < 8) return fail("truncated pcapng dump file; tried to read 8 header bytes, only got " + num(left));
    const uint8_t* b = window(pos_, 8);
    if (!b) return false;
    type = u32(b);
    len = u32(b + 4);
    if (len < 12) return fail("block in pcapng dump file has a length of " + num(len) + " < " + num(12));
    if (len % 4 != 0)
        return fail("block in pcapng dump file has a length of " + num(len) + " that is not a multiple of 4");
    if (len > max_block_) return fail("pcapng block size " + num(len) + " > maximum " + num(max_block_));
    if (left < len)
        return fail("truncated pcapng dump file; tried to read " + num(len - 8) + " bytes, only got " + num(left - 8));
    b = window(pos_, len);
    if (!b) return false;
    if (u32(b + len - 4) != len) return fail("block total length in header and trailer don't match");
    body = b + 8;
    pos_ += len;
    return true;
}

bool CaptureReader::ng_shb(const uint8_t* body, uint32_t len, bool first) noexcept {
    if (len < 28) return fail("Section Header Block in pcapng dump file has a length of " + num(len) + " < 28");
    const uint16_t maj = u16(body + 4), min = u16(body + 6);
    if (first) {
        if (!(maj == 1 && (min == 0 || min == 2)))
            return fail("unsupported pcapng savefile version " + num(maj) + "." + num(min));
        return true;
    }
    // A later section, checked as libpcap checks it among the packets: the first section's byte
    // order, major version 1. (Before the first interface description it is passed over.)
    const uint32_t bom = u32(body);
    if (bom == __builtin_bswap32(kByteOrder)) return fail("the file has sections with different byte orders");
    if (bom != kByteOrder) return fail("the file has a section with a bad byte order magic field");
    if (maj != 1) return fail("unknown pcapng savefile major version number " + num(maj));
    ifaces_.clear();
    return true;
}

bool CaptureReader::ng_idb(const uint8_t* body, uint32_t len) noexcept {
    if (len < 20) return fail("Interface Description Block in pcapng dump file has a length of " + num(len) + " < 20");
    const int lt = linktype_to_dlt(u16(body));
    const uint32_t snap = u32(body + 4);
    Iface i;
    bool have_res = false, have_off = false;
    // Options up to the trailer.
    const uint8_t* o = body + 8;
    const uint8_t* end = body + (len - 12);
    // As libpcap reads them: every option whole (header and padded value) up to the trailer or
    // an end-of-options option, which has no value.
    while (o != end) {
        if (end - o < 4) return fail("Interface Description Block has an option header cut short");
        const uint16_t code = u16(o), olen = u16(o + 2);
        o += 4;
        const uint32_t padded = (olen + 3u) & ~3u;
        if (static_cast<uint64_t>(end - o) < padded)
            return fail("Interface Description Block has an option longer than the block");
        if (code == 0) {
            if (olen != 0)
                return fail("Interface Description Block has opt_endofopt option with length " + num(olen) + " != 0");
            break;
        }
        if (code == 9) {  // if_tsresol
            if (olen != 1)
                return fail("Interface Description Block has if_tsresol option with length " + num(olen) + " != 1");
            if (have_res) return fail("Interface Description Block has more than one if_tsresol option");
            have_res = true;
            const uint8_t r = o[0];
            const uint32_t exp = r & 0x7f;
            if (r & 0x80) {
                if (exp > 63)
                    return fail("Interface Description Block if_tsresol option resolution 2^-" + num(exp) +
                                " is too high");
                i.pow2 = true;
                i.units_per_s = 1ull << exp;
            } else {
                if (exp > 19)
                    return fail("Interface Description Block if_tsresol option resolution 10^-" + num(exp) +
                                " is too high");
                i.units_per_s = 1;
                for (uint32_t k = 0; k < exp; ++k) i.units_per_s *= 10;
            }
        } else if (code == 14) {  // if_tsoffset
            if (olen != 8)
                return fail("Interface Description Block has if_tsoffset option with length " + num(olen) + " != 8");
            if (have_off) return fail("Interface Description Block has more than one if_tsoffset option");
            have_off = true;
            uint64_t v;
            std::memcpy(&v, o, 8);
            if (swapped_) v = __builtin_bswap64(v);
            i.offset_s = static_cast<int64_t>(v);
        }
        o += padded;
    }
    const uint32_t adjusted = adjust_snapshot(lt, snap);
    if (linktype_ < 0) {
        linktype_ = lt;
        snapshot_ = adjusted;
        max_block_ = 8 + 20 + max_snaplen_for_dlt(lt) + 131072 + 4;
    } else {
        if (lt != linktype_)
            return fail("an interface has a type " + num(static_cast<uint32_t>(lt)) +
                        " different from the type of the first interface");
        if (adjusted != snapshot_)
            return fail("an interface has a snapshot length " + num(adjusted) +
                        " different from the snapshot length of the first interface");
    }
    try {
        ifaces_.push_back(i);
    } catch (...) {
        return fail("out of memory");
    }
    return true;
}

uint64_t CaptureReader::to_ns(const Iface& i, uint64_t t) const noexcept {
    uint64_t sec = t / i.units_per_s, frac = t % i.units_per_s;
    // Binary units first: 2^30 and finer are more than 10^9 a second too, but no power of 10.
    if (i.pow2)
        frac = static_cast<uint64_t>(static_cast<unsigned __int128>(frac) * 1'000'000'000 / i.units_per_s);
    else if (i.units_per_s > 1'000'000'000)
        frac /= i.units_per_s / 1'000'000'000;
    else if (i.units_per_s < 1'000'000'000)
        frac *= 1'000'000'000 / i.units_per_s;
    sec += static_cast<uint64_t>(i.offset_s);
    return sec * 1'000'000'000ull + frac;
}

bool CaptureReader::next_ng(Packet& p) noexcept {
    for (;;) {
        uint32_t type, len;
        const uint8_t* body;
        if (!ng_block(type, len, body)) return false;
        const uint32_t data_max = len - 12;  // body without the trailer
        switch (type) {
            case kBlockEpb:
            case kBlockPb: {
                if (data_max < 20)
                    return fail("block in pcapng dump file is too short for a packet block: " + num(len));
                const uint32_t iface = type == kBlockEpb ? u32(body) : u16(body);
                const uint64_t t = (static_cast<uint64_t>(u32(body + 4)) << 32) | u32(body + 8);
                const uint32_t caplen = u32(body + 12), wire = u32(body + 16);
                // libpcap's order: the interface, the snapshot length, then the block's room.
                if (iface >= ifaces_.size())
                    return fail("a packet arrived on interface " + num(iface) +
                                ", but there's no Interface Description Block for that interface");
                if (caplen > snapshot_)
                    return fail("invalid packet capture length " + num(caplen) + ", bigger than snaplen of " +
                                num(snapshot_));
                if (caplen > data_max - 20)
                    return fail("packet block has caplen " + num(caplen) + " > remaining block data " +
                                num(data_max - 20));
                p.data = body + 20;
                p.caplen = caplen;
                p.wirelen = wire;
                p.ts_ns = to_ns(ifaces_[iface], t);
                last_iface_ = iface;
                return true;
            }
            case kBlockSpb: {
                if (data_max < 4) return fail("Simple Packet Block in pcapng dump file is too short: " + num(len));
                if (ifaces_.empty())
                    return fail("the capture file has a Simple Packet Block without any Interface Description Block");
                // The packet, cut to the snapshot length, must be in the block.
                const uint32_t wire = u32(body);
                const uint32_t caplen = wire > snapshot_ ? snapshot_ : wire;
                if (caplen > data_max - 4)
                    return fail("block of type 3 in pcapng dump file is too short: a " + num(caplen) +
                                "-byte packet in " + num(data_max - 4) + " bytes");
                p.data = body + 4;
                p.caplen = caplen;
                p.wirelen = wire;
                p.ts_ns = 0;
                last_iface_ = 0;
                return true;
            }
            case kBlockIdb:
                if (!ng_idb(body, len)) return false;
                break;
            case kBlockShb:
                if (!ng_shb(body, len, false)) return false;
                break;
            default: break;  // statistics, name resolution, custom, decryption secrets...
        }
    }
}

}  // namespace weir::capture
