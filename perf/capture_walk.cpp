// SPDX-License-Identifier: BSD-3-Clause
// How fast can a pcap file's records be walked, two ways, on this machine: through a read-only
// mapping of the file (as the capture reader reads today: page tables filled 32 MiB ahead with
// MADV_POPULATE_READ), and by read() of 4 MiB pieces into one reused buffer on transparent huge
// pages. Each record's header is read and one byte of its frame (in the IPv4 header) touched,
// about what the reader and the queue hash need. Prints one line per way and round:
//   way=mmap|read packets=N seconds=S mpps=X
// usage: capture_walk FILE.pcap [--rounds N]          (classic pcap, either byte order)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

double seconds_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool swapped_file(const uint8_t* h) {
    uint32_t m;
    std::memcpy(&m, h, 4);
    return m == 0xd4c3b2a1 || m == 0x4d3cb2a1;
}

uint32_t caplen_at(const uint8_t* rec, bool swapped) {
    uint32_t v;
    std::memcpy(&v, rec + 8, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

struct Walk {
    uint64_t packets = 0, sum = 0;
};

Walk walk_mapped(int fd, size_t size) {
    Walk w;
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        std::perror("mmap");
        std::exit(1);
    }
    const auto* b = static_cast<const uint8_t*>(m);
    const bool sw = swapped_file(b);
    size_t pos = 24, populated = 0;
    while (pos + 16 <= size) {
        if (pos + (1 << 20) > populated && populated < size) {
            const size_t to = std::min(size, pos + (32 << 20)), from = populated & ~size_t{4095};
#ifdef MADV_POPULATE_READ
            madvise(const_cast<uint8_t*>(b) + from, to - from, MADV_POPULATE_READ);
#endif
            populated = to;
        }
        const uint32_t cl = caplen_at(b + pos, sw);
        if (pos + 16 + cl > size) break;
        if (cl > 23) w.sum += b[pos + 16 + 23];
        pos += 16 + cl;
        ++w.packets;
    }
    munmap(m, size);
    return w;
}

Walk walk_read(int fd) {
    Walk w;
    constexpr size_t kPiece = 4 << 20, kRoom = 6 << 20;  // room for a piece and what is carried over
    auto* buf = static_cast<uint8_t*>(std::aligned_alloc(2 << 20, kRoom));
    madvise(buf, kRoom, MADV_HUGEPAGE);
    lseek(fd, 0, SEEK_SET);
    ssize_t got = read(fd, buf, kPiece);
    if (got < 24) return w;
    const bool sw = swapped_file(buf);
    size_t have = static_cast<size_t>(got), pos = 24;
    for (;;) {
        if (pos + 16 > have || pos + 16 + caplen_at(buf + pos, sw) > have) {
            const size_t rest = have - pos;
            if (rest >= kRoom) break;  // a record larger than the buffer
            std::memmove(buf, buf + pos, rest);
            got = read(fd, buf + rest, std::min(kPiece, kRoom - rest));
            if (got <= 0) break;
            have = rest + static_cast<size_t>(got);
            pos = 0;
            continue;
        }
        const uint32_t cl = caplen_at(buf + pos, sw);
        if (cl > 23) w.sum += buf[pos + 16 + 23];
        pos += 16 + cl;
        ++w.packets;
    }
    std::free(buf);
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: capture_walk FILE.pcap [--rounds N]\n");
        return 2;
    }
    int rounds = 3;
    for (int i = 2; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--rounds") rounds = std::atoi(argv[i + 1]);
    const int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 24) {
        std::fprintf(stderr, "capture_walk: cannot read %s\n", argv[1]);
        return 1;
    }
    const size_t size = static_cast<size_t>(st.st_size);
    for (int r = 0; r < rounds; ++r)
        for (int way = 0; way < 2; ++way) {
            const double t0 = seconds_now();
            const Walk w = way == 0 ? walk_mapped(fd, size) : walk_read(fd);
            const double s = seconds_now() - t0;
            std::printf("way=%s packets=%lu seconds=%.3f mpps=%.2f check=%lu\n", way == 0 ? "mmap" : "read",
                        static_cast<unsigned long>(w.packets), s, static_cast<double>(w.packets) / s / 1e6,
                        static_cast<unsigned long>(w.sum));
        }
    close(fd);
    return 0;
}
