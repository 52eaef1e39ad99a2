// SPDX-License-Identifier: BSD-3-Clause
// Selective capture on the control side: a thread of its own takes the packets workers copied
// for capture rules and writes them into pcapng files (lib/capture), never holding a worker up:
// a worker whose slots are all waiting counts the packet as dropped.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "capture/pcapng.h"
#include "config/config.h"

namespace weir {

class Worker;

struct CaptureWriter {
    std::unique_ptr<capture::PcapngWriter> writer;
    std::thread thread;
    std::atomic<bool> stop{false};
    mutable std::mutex mu;
    capture::WriterStats stats;  // published by the thread
    ~CaptureWriter() {
        stop.store(true, std::memory_order_release);
        if (thread.joinable()) thread.join();
    }
    capture::WriterStats snapshot() const {
        std::lock_guard<std::mutex> g(mu);
        return stats;
    }
};

// Opens the folder (throws with the reason) and starts the writer thread for the workers' rings.
std::unique_ptr<CaptureWriter> start_capture(const config::Capture& c,
                                             const std::vector<std::unique_ptr<Worker>>& workers);
// Writes what is left and stops (after the workers stopped).
void stop_capture(CaptureWriter& w);

}  // namespace weir
