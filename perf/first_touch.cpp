// SPDX-License-Identifier: BSD-3-Clause
// What new memory costs on this machine: a flow table, a capture's buffers and detection's
// tables are mapped and then written for the first time, and every first write of a page is a
// page fault that the kernel (and, in a VM, the hypervisor) must serve. Maps `--mib` MiB and
// writes it four ways, each on a fresh mapping, then writes the last one again:
//   way=4k        first touch with 4 KiB pages
//   way=thp       first touch after MADV_HUGEPAGE (2 MiB pages where the kernel gives them)
//   way=populate  MADV_POPULATE_WRITE (Linux 5.14) on the whole range, then the writes
//   way=again     the same range written a second time: what the memory itself costs
// One line per way and round: way=W mib=N seconds=S mib_per_s=R
// usage: first_touch [--mib N] [--rounds R]
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void line(const char* way, size_t mib, double s) {
    std::printf("way=%s mib=%zu seconds=%.4f mib_per_s=%.0f\n", way, mib, s, static_cast<double>(mib) / s);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    size_t mib = 256;
    unsigned rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--mib")) mib = std::strtoul(argv[i + 1], nullptr, 10);
        if (!std::strcmp(argv[i], "--rounds")) rounds = static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    }
    if (mib == 0 || rounds == 0) {
        std::fprintf(stderr, "usage: first_touch [--mib N] [--rounds R]\n");
        return 2;
    }
    const size_t n = mib << 20;
    for (unsigned r = 0; r < rounds; ++r) {
        for (const char* way : {"4k", "thp", "populate"}) {
            void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                std::perror("first_touch: mmap");
                return 1;
            }
            auto* p = static_cast<char*>(m);
            double t = now();
            if (way[0] == 't') madvise(p, n, MADV_HUGEPAGE);
            if (way[0] == 'p' && madvise(p, n, MADV_POPULATE_WRITE) != 0) {
                std::perror("first_touch: MADV_POPULATE_WRITE");
                munmap(m, n);
                continue;
            }
            std::memset(p, 1, n);
            line(way, mib, now() - t);
            if (way[0] == 'p') {
                t = now();
                std::memset(p, 2, n);
                line("again", mib, now() - t);
            }
            munmap(m, n);
        }
    }
    return 0;
}
