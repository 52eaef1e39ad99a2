// The control thread (main lcore): drains worker rings into the exporters, watches for the
// end of a replayed capture and for signals, prints counters, and at the end the summary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dpdk/port.h"
#include "export/ipfix_udp.h"
#include "worker.h"

namespace weir {

struct Runtime {
    config::Config cfg;
    std::vector<dpdk::PortInfo> ports;
    std::vector<uint64_t> expected_packets;  // per port, replay only: what libpcap reads
    std::vector<std::string> captures;       // replay only, for the summary
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::unique_ptr<exporter::IpfixUdpExporter>> exporters;
    uint64_t handed_records = 0;  // records the control thread took from workers
    uint64_t handed_packets = 0;
    uint64_t handed_messages = 0;
    double started_s = 0;
};

// Runs until a signal, or the end of every replayed capture, then stops the workers and drains
// what they flushed. Returns when every worker is done and every message is sent.
void control_loop(Runtime& rt);

// Prints the summary to stdout and, if configured, writes it as JSON. Returns true when the
// packet accounting balances (received = in records + counted drops).
bool report(Runtime& rt);

void install_signal_handlers();

}  // namespace weir
