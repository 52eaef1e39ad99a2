// SPDX-License-Identifier: BSD-3-Clause
// weir: command line and configuration -> EAL -> ports -> workers -> control loop -> summary.
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pcap/pcap.h>
#include <sched.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/notify.h"
#include "config/config.h"
#include "control.h"
#include "export/exporter.h"
#include "web/web_config.h"
#include "dpdk/log_stream.h"
#include "dpdk/port.h"
#include "capture/reader.h"
#include "management.h"

#ifndef WEIR_DRIVERS_DIR
#define WEIR_DRIVERS_DIR "/usr/local/share/weir/drivers-config"
#endif
#ifndef WEIR_BUILD_ROOT
#define WEIR_BUILD_ROOT ""
#endif
#ifndef WEIR_SOURCE_ROOT
#define WEIR_SOURCE_ROOT ""
#endif
#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

namespace {

using nlohmann::json;
using weir::config::Config;

constexpr int kExitUsage = 2;

const char kUsage[] = R"(usage: weir [OPTIONS] [-- EAL-ARGUMENTS...]

Flow probe: receives packets on DPDK ports, keeps per-flow state on one worker core per RX
queue, and exports flow records as IPFIX.

Replay a capture (no configuration file, no hugepages needed):
  weir -r CAPTURE.pcap --ipfix udp://127.0.0.1:4739

Options:
  -c, --config FILE          JSON configuration (see README.md); options below override it
  -r, --read CAPTURE         replay a pcap/pcapng file, spread over the workers; repeat to read more in turn
                             files (one RX queue and worker each); exits at the end of the capture
  -i, --port DEVICE          add a port: PCI address (0000:3b:00.0) or vdev (net_af_packet0,iface=eth1)
      --ipfix URL            export IPFIX to URL: udp://HOST:PORT, tcp://HOST:PORT or file:///PATH
                             (repeatable)
      --export FORMAT=URL    export in FORMAT (ipfix, netflow9, netflow5, jsonl, clickhouse) to URL,
                             e.g. netflow9=udp://127.0.0.1:2055, jsonl=file:///var/lib/weir/flows.jsonl,
                             jsonl=kafka://BROKER:9092/TOPIC (repeatable; the file's "exporters" take
                             the other settings)
  -w, --workers N            worker cores = RX queues per port (default 1, or one per -r file)
      --capacity N           flow table entries per worker (default 1048576)
      --idle-timeout S       expire a flow S seconds after its last packet (default 15)
      --active-timeout S     export a long flow every S seconds (default 60)
      --tcp-end-timeout S    expire a TCP flow S seconds after FIN both ways or RST (default 1)
      --mtu N                largest IPFIX datagram incl. IP/UDP headers (default 1500)
      --domain N             observation domain of worker 0; worker i uses N+i (default 1)
      --probe NAME           this probe's name in every record (default: the host name)
      --stats-interval S     print counters every S seconds, 0 for never (default 10)
      --summary-json FILE    also write the exit summary as JSON
      --drivers-config DIR   folder of per-driver profiles (default: the installed drivers-config)
      --management ADDR:PORT serve /metrics, /status, /flows/top, /healthz, POST /reload there
                             (default 127.0.0.1:9471; "none" for no server)
      --rules FILE           inspect payload with the Hyperscan rules in FILE (JSON): applications,
                             tags, TLS server names and HTTP Hosts go into the records
      --events URL           write detection events (scans, sweeps, floods, reflection) as JSON
                             lines to URL: file:///PATH, tcp://HOST:PORT or udp://HOST:PORT
      --no-detect            no detection (it is on by default; events also go to the log, /events)
      --metrics ADDR:PORT    also serve /metrics and /healthz alone there, for a Prometheus on
                             another host (the status API and reload stay on --management)
      --web-config FILE      TLS and basic auth for both, from a Prometheus exporter web
                             configuration (tls_server_config, basic_auth_users)
      --hold                 after a replay, keep running with every flow active until SIGINT/SIGTERM
      --check                validate the configuration, print the result and exit (nothing starts)
      --log-level LEVEL      error, warning, notice, info (default) or debug: weir's lines above it
                             are not written (under systemd each line carries its priority)
  -V, --version              print the version
  -h, --help                 this text

EAL arguments after "--" go to DPDK (for example -l 0-4 --socket-mem 2048). weir's defaults
stay unless an argument replaces them: one lcore for control plus one per worker (-l, --lcores),
--in-memory, and for replays and vdevs --no-huge --no-pci -m (--socket-mem, --huge-dir, -a).

SIGHUP (or POST /reload) reads the configuration again: exporters, timeouts, template refresh,
the stats interval and the rules file's rules change live; anything else is refused with the
reason.

Exit status: 0 done, 1 runtime failure, 2 bad configuration or arguments.
)";

[[noreturn]] void die_usage(const std::string& msg) {
    weir::log::say(weir::log::Level::kError, "weir: %s", msg.c_str());
    weir::log::say(weir::log::Level::kError, "(weir --help for usage)");
    std::exit(kExitUsage);
}

[[noreturn]] void die_config(const std::vector<std::string>& problems) {
    for (const auto& p : problems) weir::log::say(weir::log::Level::kError, "weir: config: %s\n", p.c_str());
    std::exit(kExitUsage);
}

double parse_number(const char* opt, const char* v) {
    char* end = nullptr;
    const double x = std::strtod(v, &end);
    if (end == v || *end) die_usage(std::string(opt) + ": expected a number, got \"" + v + "\"");
    return x;
}

int64_t parse_int(const char* opt, const char* v) {
    char* end = nullptr;
    const long long x = std::strtoll(v, &end, 10);
    if (end == v || *end) die_usage(std::string(opt) + ": expected an integer, got \"" + v + "\"");
    return x;
}

struct Cli {
    std::string config_file;
    json over = json::object();                                     // values given as options
    std::vector<std::pair<json::json_pointer, std::string>> given;  // where in `over`, and by which option
    std::vector<std::string> captures, devices;
    std::vector<std::pair<std::string, std::string>> exports;  // format, URL, in the order given
    std::vector<std::string> eal;
    bool eal_given = false;
    bool check = false;  // validate the configuration and exit
};

// The configuration: the file (read again on every reload) with the command line on top.
// Throws weir::config::ConfigError for an unreadable or invalid file.
json merged_config(const Cli& cli, json* pinned = nullptr) {
    json cfg = json::object();
    if (!cli.config_file.empty()) {
        std::ifstream in(cli.config_file);
        if (!in)
            throw weir::config::ConfigError(
                {"cannot read configuration " + cli.config_file + ": " + std::strerror(errno)});
        try {
            cfg = json::parse(in);
        } catch (const json::parse_error& e) {
            throw weir::config::ConfigError({cli.config_file + ": not valid JSON: " + e.what()});
        }
        if (!cfg.is_object()) throw weir::config::ConfigError({"(top level): expected an object"});
        // A relative rules file or capture folder is where the configuration file is, whatever
        // the working folder.
        for (const char* key : {"/inspect/rules", "/capture/dir", "/management/web_config"}) {
            const json::json_pointer ptr(key);
            if (!cfg.contains(ptr) || !cfg.at(ptr).is_string()) continue;
            const std::filesystem::path p = cfg.at(ptr).get<std::string>();
            if (!p.empty() && p.is_relative())
                cfg[ptr] = (std::filesystem::absolute(cli.config_file).parent_path() / p).lexically_normal().string();
        }
    }
    if (pinned)
        for (const auto& [where, opt] : cli.given)
            if (cfg.contains(where) && cfg.at(where) != cli.over.at(where)) {
                std::string key = where.to_string().substr(1);
                std::replace(key.begin(), key.end(), '/', '.');
                pinned->push_back(
                    {{"key", key}, {"option", opt}, {"value", cli.over.at(where)}, {"file", cfg.at(where)}});
            }
    for (auto it = cli.over.begin(); it != cli.over.end(); ++it) {
        if (it->is_object() && cfg.contains(it.key()) && cfg[it.key()].is_object())
            cfg[it.key()].update(*it);
        else
            cfg[it.key()] = *it;
    }
    if (!cli.captures.empty()) {
        std::string dev = "net_pcap_replay";
        for (const auto& f : cli.captures) dev += ",rx_pcap=" + f;
        cfg["ports"].push_back({{"device", dev}});
    }
    for (const auto& d : cli.devices) cfg["ports"].push_back({{"device", d}});
    for (const auto& [format, url] : cli.exports) cfg["exporters"].push_back({{"format", format}, {"url", url}});
    if (cli.eal_given) cfg["eal"] = cli.eal;
    return cfg;
}

// What is wrong with the option `typed` (an argument as given: "--mtu", "--help=x", "-wq"), for
// getopt's ':' (a value is missing) or '?' (unknown, ambiguous, or a value where none is taken).
std::string option_problem(const char* typed, bool missing_value, int short_opt, const option* longopts) {
    const std::string arg = typed ? typed : "";
    if (arg.rfind("--", 0) != 0) {
        if (short_opt <= ' ' || short_opt > '~') return "unknown option " + arg;
        const std::string name = std::string("-") + static_cast<char>(short_opt);
        return missing_value ? "option " + name + " needs a value" : "unknown option " + name;
    }
    const std::string name = arg.substr(2, arg.find('=') - 2);
    if (missing_value) return "option --" + name + " needs a value";
    std::vector<const option*> matches;
    for (const option* o = longopts; o->name; ++o) {
        if (name == o->name) {
            matches.assign(1, o);
            break;
        }
        if (!name.empty() && std::string(o->name).rfind(name, 0) == 0) matches.push_back(o);
    }
    if (matches.empty()) return "unknown option --" + name;
    if (matches.size() > 1) {
        std::string all;
        for (const option* o : matches) all += (all.empty() ? "--" : ", --") + std::string(o->name);
        return "option --" + name + " is ambiguous (" + all + ")";
    }
    if (matches[0]->has_arg == no_argument && arg.find('=') != std::string::npos)
        return "option --" + std::string(matches[0]->name) + " takes no value";
    return "option --" + std::string(matches[0]->name) + ": bad use";
}

Cli parse_cli(int argc, char** argv) {
    enum {
        kIpfix = 256,
        kCapacity,
        kIdle,
        kActive,
        kTcpEnd,
        kMtu,
        kDomain,
        kProbe,
        kStats,
        kSummary,
        kDrivers,
        kManagement,
        kHold,
        kCheck,
        kLogLevel,
        kMetrics,
        kWebConfig,
        kExport,
        kRules,
        kEvents,
        kNoDetect
    };
    static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                      {"read", required_argument, nullptr, 'r'},
                                      {"port", required_argument, nullptr, 'i'},
                                      {"ipfix", required_argument, nullptr, kIpfix},
                                      {"workers", required_argument, nullptr, 'w'},
                                      {"capacity", required_argument, nullptr, kCapacity},
                                      {"idle-timeout", required_argument, nullptr, kIdle},
                                      {"active-timeout", required_argument, nullptr, kActive},
                                      {"tcp-end-timeout", required_argument, nullptr, kTcpEnd},
                                      {"mtu", required_argument, nullptr, kMtu},
                                      {"domain", required_argument, nullptr, kDomain},
                                      {"probe", required_argument, nullptr, kProbe},
                                      {"stats-interval", required_argument, nullptr, kStats},
                                      {"summary-json", required_argument, nullptr, kSummary},
                                      {"drivers-config", required_argument, nullptr, kDrivers},
                                      {"management", required_argument, nullptr, kManagement},
                                      {"hold", no_argument, nullptr, kHold},
                                      {"check", no_argument, nullptr, kCheck},
                                      {"log-level", required_argument, nullptr, kLogLevel},
                                      {"metrics", required_argument, nullptr, kMetrics},
                                      {"web-config", required_argument, nullptr, kWebConfig},
                                      {"export", required_argument, nullptr, kExport},
                                      {"rules", required_argument, nullptr, kRules},
                                      {"events", required_argument, nullptr, kEvents},
                                      {"no-detect", no_argument, nullptr, kNoDetect},
                                      {"version", no_argument, nullptr, 'V'},
                                      {"help", no_argument, nullptr, 'h'},
                                      {nullptr, 0, nullptr, 0}};
    Cli cli;
    auto& config_file = cli.config_file;
    auto& captures = cli.captures;
    auto& devices = cli.devices;
    // An option's value, where it goes in the configuration, remembered to tell a reload why the
    // file's value for it does not apply.
    auto set = [&cli](const char* where, const char* opt, const json& v) {
        const json::json_pointer ptr(where);
        cli.over[ptr] = v;
        cli.given.emplace_back(ptr, opt);
    };
    int c;
    opterr = 0;
    int at = optind;  // the argument getopt is reading: the option as the user typed it
    while ((c = getopt_long(argc, argv, "+:c:r:i:w:Vh", longopts, nullptr)) != -1) {
        switch (c) {
            case 'c': config_file = optarg; break;
            case 'r': captures.emplace_back(optarg); break;
            case 'i': devices.emplace_back(optarg); break;
            case kIpfix: cli.exports.emplace_back("ipfix", optarg); break;
            case kExport: {
                const std::string v = optarg;
                const auto eq = v.find('=');
                if (eq == std::string::npos || eq == 0)
                    die_usage("--export " + v +
                              ": expected FORMAT=URL (ipfix, netflow9, netflow5, jsonl, clickhouse), "
                              "e.g. netflow9=udp://127.0.0.1:2055");
                cli.exports.emplace_back(v.substr(0, eq), v.substr(eq + 1));
                break;
            }
            case 'w': set("/workers", "--workers", parse_int("--workers", optarg)); break;
            case kCapacity:
                set("/flow_table/capacity_per_worker", "--capacity", parse_int("--capacity", optarg));
                break;
            case kIdle: set("/timeouts/idle_s", "--idle-timeout", parse_number("--idle-timeout", optarg)); break;
            case kActive:
                set("/timeouts/active_s", "--active-timeout", parse_number("--active-timeout", optarg));
                break;
            case kTcpEnd:
                set("/timeouts/tcp_end_s", "--tcp-end-timeout", parse_number("--tcp-end-timeout", optarg));
                break;
            case kMtu: set("/ipfix/mtu", "--mtu", parse_int("--mtu", optarg)); break;
            case kDomain: set("/ipfix/observation_domain", "--domain", parse_int("--domain", optarg)); break;
            case kProbe: set("/probe", "--probe", optarg); break;
            case kStats: set("/stats_interval_s", "--stats-interval", parse_number("--stats-interval", optarg)); break;
            case kSummary: set("/summary_json", "--summary-json", optarg); break;
            case kDrivers: set("/drivers_config", "--drivers-config", optarg); break;
            case kManagement:
                set("/management/listen", "--management", std::string(optarg) == "none" ? "" : optarg);
                break;
            case kHold: set("/hold_after_replay", "--hold", true); break;
            case kCheck: cli.check = true; break;
            case kLogLevel: set("/log_level", "--log-level", optarg); break;
            case kMetrics: set("/management/metrics_listen", "--metrics", optarg); break;
            case kWebConfig:
                set("/management/web_config", "--web-config",
                    std::filesystem::absolute(optarg).lexically_normal().string());
                break;
            case kRules:
                set("/inspect/rules", "--rules", std::filesystem::absolute(optarg).lexically_normal().string());
                break;
            case kEvents: set("/detect/events", "--events", optarg); break;
            case kNoDetect: set("/detect/enabled", "--no-detect", false); break;
            case 'V': std::printf("weir %s\n", WEIR_VERSION); std::exit(0);
            case 'h': std::fputs(kUsage, stdout); std::exit(0);
            case ':':
            case '?': die_usage(option_problem(argv[at], c == ':', optopt, longopts));
            default: die_usage("bad arguments");
        }
        at = optind;
    }
    if (optind < argc) {
        if (std::strcmp(argv[optind - 1], "--") != 0)
            die_usage(std::string("unexpected argument \"") + argv[optind] + "\" (EAL arguments go after --)");
        cli.eal.assign(argv + optind, argv + argc);
        cli.eal_given = true;
    }
    for (const auto& f : captures)
        if (f.find(',') != std::string::npos) die_usage("--read " + f + ": a capture path cannot contain ','");
    return cli;
}

// Default EAL arguments: main lcore plus one per worker, placed on the CPUs we may use with the
// control thread alone on the first; workers share CPUs only when there are too few.
std::vector<std::string> default_eal(const Config& cfg, uint32_t data_room) {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(0);
    std::string lcores = "0@" + std::to_string(cpus[0]);
    for (uint32_t w = 1; w <= cfg.workers; ++w) {
        const int cpu = cpus.size() > 1 ? cpus[1 + (w - 1) % (cpus.size() - 1)] : cpus[0];
        lcores.append(",").append(std::to_string(w)).append("@").append(std::to_string(cpu));
    }
    // DPDK says what goes wrong at warning; its info and debug lines are for DPDK's own debugging.
    const bool quiet = cfg.log_level == weir::log::Level::kError;
    std::vector<std::string> a = {"--lcores=" + lcores, "--no-telemetry",
                                  quiet ? "--log-level=error" : "--log-level=warning"};
    bool all_vdev = true;
    for (const auto& p : cfg.ports) all_vdev = all_vdev && p.is_vdev();
    if (all_vdev) {
        // Packet buffers plus ring and driver overhead; the flow tables live outside DPDK memory.
        // --no-huge cannot go with --in-memory; --no-shconf keeps runs from sharing state.
        const uint64_t mbuf = data_room + RTE_PKTMBUF_HEADROOM + 384;  // buffer, headroom, header and pool overhead
        const uint64_t mb = 64 +
            static_cast<uint64_t>(cfg.workers) * cfg.ports.size() * cfg.mbufs_per_queue * mbuf / (1 << 20) +
            static_cast<uint64_t>(cfg.workers) * cfg.tunnels.handoff_ring * sizeof(weir::Handoff) / (1 << 20);
        a.insert(a.end(), {"--no-huge", "--no-shconf", "--no-pci", "-m", std::to_string(mb)});
    } else {
        a.push_back("--in-memory");
    }
    return a;
}

// The EAL options of a list of arguments, by name ("-m", "--lcores"); values are skipped.
std::vector<std::string> eal_option_names(const std::vector<std::string>& args) {
    std::vector<std::string> names;
    for (const auto& a : args) {
        if (a.rfind("--", 0) == 0)
            names.push_back(a.substr(0, a.find('=')));
        else if (a.size() >= 2 && a[0] == '-')
            names.push_back(a.substr(0, 2));
    }
    return names;
}

// weir's EAL defaults with the user's arguments after them. A default goes where the user gives
// an option that replaces it or cannot go with it (-l for --lcores, --socket-mem for --no-huge
// and -m, -a for --no-pci, ...); the rest stay, so that one --log-level does not cost the
// replay's --no-huge. Later options win in DPDK where both are allowed (--log-level).
std::vector<std::string> merge_eal(const std::vector<std::string>& defaults, const std::vector<std::string>& user) {
    struct Rule {
        const char* option;
        std::vector<const char*> displaced_by;
    };
    static const std::vector<Rule> rules = {
        {"--lcores", {"-l", "-c", "--lcores"}},
        {"--no-telemetry", {"--telemetry"}},
        {"--no-huge", {"--socket-mem", "--socket-limit", "--huge-dir", "--in-memory", "--legacy-mem", "--no-huge"}},
        {"--no-shconf", {"--in-memory", "--proc-type", "--file-prefix", "--no-shconf"}},
        {"--no-pci", {"-a", "--allow", "-b", "--block", "--no-pci"}},
        {"-m", {"-m", "--socket-mem"}},
        {"--in-memory", {"--no-huge", "--proc-type", "--in-memory"}},
    };
    const std::vector<std::string> given = eal_option_names(user);
    auto displaced = [&](const std::string& name) {
        for (const auto& r : rules)
            if (name == r.option)
                for (const char* by : r.displaced_by)
                    if (std::find(given.begin(), given.end(), by) != given.end()) return true;
        return false;
    };
    std::vector<std::string> out;
    for (size_t i = 0; i < defaults.size(); ++i) {
        const std::string& a = defaults[i];
        const bool takes_value = a == "-m";  // the only default given as two arguments
        if (!displaced(a.substr(0, a.find('=')))) {
            out.push_back(a);
            if (takes_value) out.push_back(defaults[i + 1]);
        }
        if (takes_value) ++i;
    }
    out.insert(out.end(), user.begin(), user.end());
    return out;
}

// What to do when DPDK's EAL would not start: its own message is above; this says why it
// usually happens.
std::string eal_hint(int err, const Config& cfg, const std::vector<std::string>& args) {
    const std::vector<std::string> names = eal_option_names(args);
    const bool no_huge = std::find(names.begin(), names.end(), "--no-huge") != names.end();
    bool nic = false;
    for (const auto& p : cfg.ports) nic = nic || !p.is_vdev();
    switch (err) {
        case EACCES:
        case ENOMEM:
            if (!no_huge)
                return std::string("DPDK found no usable hugepages") +
                    (geteuid() != 0 ? " (and weir is not running as root)" : "") +
                    ": reserve them first (as root: echo 1024 > /proc/sys/vm/nr_hugepages, and mount hugetlbfs on "
                    "/dev/hugepages; the shipped unit's weir-prepare does both from /etc/default/weir)" +
                    (nic ? "; a PCI port also needs its device bound to vfio-pci (dpdk-devbind.py --bind=vfio-pci "
                           "ADDRESS)"
                         : "; replays and vdev ports run without them unless the EAL arguments ask for hugepages");
            return "DPDK could not get the memory it was given: raise -m (MB) or lower mbufs_per_queue / workers";
        case EINVAL:
            return "DPDK refused an argument (its message is above): a port is a PCI address (0000:3b:00.0) or a vdev "
                   "(net_af_packet0,iface=eth1; net_pcap0,rx_pcap=FILE); EAL arguments go after --";
        case ENODEV:
        case ENOTSUP:
            return "DPDK could not probe a device: is the NIC bound to vfio-pci (dpdk-devbind.py --status), or is its "
                   "driver (mlx5: rdma-core) installed?";
        case EALREADY: return "DPDK is already running in this process";
        default: return "see DPDK's message above";
    }
}

// Where the driver profiles are when the configuration does not say: next to the binary
// (PREFIX/bin/weir and PREFIX/share/weir/drivers-config, or the source tree of the build tree it
// sits in), then the prefix it was built for. Empty when none exists; `tried` lists where it
// looked. The compiled-in copies of the shipped profiles then serve.
std::string find_drivers_dir(std::vector<std::string>& tried) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        tried.push_back((exe.parent_path() / ".." / "share" / "weir" / "drivers-config").lexically_normal());
        const std::string build_root = WEIR_BUILD_ROOT;
        if (!build_root.empty() && exe.string().rfind(build_root + "/", 0) == 0)
            tried.push_back((fs::path(WEIR_SOURCE_ROOT) / "drivers-config").lexically_normal());
    }
    tried.push_back(WEIR_DRIVERS_DIR);
    for (const auto& d : tried)
        if (fs::is_directory(d, ec)) return d;
    return "";
}

uint64_t wall_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
    weir::log::init();
    // SIGINT/SIGTERM ask for a clean stop from the first instant, during DPDK's start-up too:
    // weir then starts, stops at once, reports and exits 0 (killed half-started, it would leave
    // no report and exit 143).
    weir::install_signal_handlers();
    const Cli cli = parse_cli(argc, argv);
    Config cfg;
    try {
        cfg = weir::config::from_json(merged_config(cli));
    } catch (const weir::config::ConfigError& e) {
        die_config(e.problems());
    }
    {
        std::vector<std::string> problems;  // what only an exporter's library can tell (librdkafka properties)
        for (size_t i = 0; i < cfg.exporters.size(); ++i)
            for (const auto& p : weir::exporter::kafka_problems(cfg.exporters[i])) {
                std::string where = "exporters[";
                where += std::to_string(i);
                where += "].";
                problems.push_back(where + p);
            }
        if (!problems.empty()) die_config(problems);
    }
    // TLS and basic auth of the management listeners: read and checked now (the certificate
    // and key loaded), so that a bad file stops weir before anything starts.
    weir::web::WebConfig web;
    if (!cfg.web_config.empty()) {
        try {
            web = weir::web::load(cfg.web_config);
        } catch (const weir::web::WebConfigError& e) {
            die_config({std::string("management.web_config: ") + e.what()});
        }
    }
    weir::log::set_level(cfg.log_level);
    std::vector<std::string> warnings;  // said before start, and by --check
    if (!cfg.drivers_config.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(cfg.drivers_config, ec))
            die_config({"drivers_config: no such folder \"" + cfg.drivers_config + "\""});
    } else {
        std::vector<std::string> tried;
        cfg.drivers_config = find_drivers_dir(tried);
        if (cfg.drivers_config.empty()) {
            std::string where;
            for (const auto& t : tried) where += (where.empty() ? "" : ", ") + t;
            warnings.push_back("weir: warning: no drivers-config folder (looked in " + where +
                               "); using the driver profiles compiled into weir, which are the shipped ones");
        }
    }

    weir::Runtime rt;
    rt.version = WEIR_VERSION;
    rt.config_source = [cli](json& pinned) { return merged_config(cli, &pinned); };
    // Replay: captures that a net_pcap port would only read are mapped and read by weir itself
    // (dpdk/replay.h), one ring port per link type; their packets are counted now, before DPDK
    // starts. A net_pcap port with other arguments (a live libpcap interface) stays net_pcap.
    std::vector<std::vector<int>> linktypes;
    {
        std::vector<weir::config::Port> ports;
        for (size_t p = 0; p < cfg.ports.size(); ++p) {
            const std::string what = "ports[" + std::to_string(p) + "].device";
            const auto files = weir::dpdk::replay_files(cfg.ports[p].device);
            if (files.empty()) {
                ports.push_back(cfg.ports[p]);
                linktypes.emplace_back();
                rt.replays.emplace_back();
                rt.expected_packets.push_back(0);
                continue;
            }
            // Files of one link type share a port; each link type has a port of its own.
            std::vector<std::pair<int, std::vector<std::string>>> groups;
            for (const auto& f : files) {
                int lt = 0;
                try {
                    lt = weir::capture::CaptureReader(f).linktype();
                } catch (const std::exception& e) {
                    die_config({what + ": cannot read capture \"" + f + "\": " + e.what()});
                }
                auto g = std::find_if(groups.begin(), groups.end(), [lt](const auto& x) { return x.first == lt; });
                if (g == groups.end()) g = groups.insert(groups.end(), {lt, {}});
                g->second.push_back(f);
                rt.captures.push_back(f);
                if (!weir::packet::link_type_supported(static_cast<uint16_t>(lt)))
                    weir::log::say(
                        weir::log::Level::kWarning,
                        "weir: %s: link type %d (%s) is not decoded; its packets count as unsupported_link\n",
                        f.c_str(), lt, pcap_datalink_val_to_name(lt) ?: "?");
            }
            for (auto& [lt, group] : groups) {
                std::unique_ptr<weir::dpdk::Replay> r;
                try {
                    r = std::make_unique<weir::dpdk::Replay>(group, cli.check);
                } catch (const std::exception& e) {
                    die_config({what + ": cannot read capture " + e.what()});
                }
                for (const auto& problem : r->problems())
                    weir::log::say(weir::log::Level::kWarning, "weir: %s\n", problem.c_str());
                weir::config::Port port = cfg.ports[p];
                if (groups.size() > 1) {
                    port.device = cfg.ports[p].name() + "_" + std::to_string(ports.size());
                    for (const auto& f : group) port.device += ",rx_pcap=" + f;
                }
                ports.push_back(port);
                linktypes.emplace_back(cfg.workers, lt);
                rt.expected_packets.push_back(r->packets());
                rt.replays.push_back(std::move(r));
            }
        }
        rt.configured_ports = cfg.ports;  // what a reload compares with
        cfg.ports = std::move(ports);
    }

    if (cfg.exporters.empty())
        warnings.push_back(
            "weir: warning: no exporters: flow records are counted and discarded (add --ipfix URL or "
            "\"exporters\" to the configuration)");
    for (const auto& key : web.ignored)
        warnings.push_back("weir: warning: management.web_config: " + web.path + ": " + key + " has no effect in weir");
    if (!web.empty() && cfg.management.empty() && cfg.metrics_listen.empty())
        warnings.push_back("weir: warning: management.web_config is set but no management listener is");
    // Virtual devices take the driver arguments their profile adds (af_packet frame sizes), and
    // their packet buffers are sized before EAL starts.
    uint32_t vdev_room = RTE_MBUF_DEFAULT_DATAROOM;
    std::vector<std::string> devices;
    for (const auto& p : cfg.ports) {
        std::string dev = p.device;
        if (p.is_vdev()) {
            const std::string driver = weir::dpdk::vdev_driver(dev);
            if (!driver.empty()) {
                try {
                    const auto prof = weir::dpdk::load_profile(cfg.drivers_config, driver);
                    dev = weir::dpdk::with_devargs(dev, prof);
                    vdev_room = std::max(vdev_room, weir::dpdk::data_room_for(prof, false));
                } catch (const std::exception& e) {
                    die_config({std::string("driver profile: ") + e.what()});
                }
            }
        }
        devices.push_back(dev);
    }

    // Payload rules: compiled before anything starts, so a bad rule stops weir with its reason.
    std::shared_ptr<const weir::inspect::Ruleset> rules;
    if (cfg.inspect.on()) {
        try {
            rules = weir::compile_rules(cfg.inspect);
            const auto problems = weir::capture_problems(*rules, cfg.capture);
            if (!problems.empty()) throw weir::inspect::RuleError(problems.front());
        } catch (const std::exception& e) {
            std::vector<std::string> problems;
            std::string all = e.what(), line;
            for (std::istringstream in(all); std::getline(in, line);) problems.push_back("inspect.rules: " + line);
            die_config(problems);
        }
    }

    if (cfg.capture.on()) {
        // The capture folder: made now (0700) and writable, or a configuration error.
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(cfg.capture.dir).parent_path(), ec);
        if (!ec && mkdir(cfg.capture.dir.c_str(), 0700) != 0 && errno != EEXIST)
            ec = std::error_code(errno, std::generic_category());
        if (ec || access(cfg.capture.dir.c_str(), W_OK) != 0)
            die_config({"capture.dir: " + cfg.capture.dir + ": " + (ec ? ec.message() : std::strerror(errno))});
    }

    if (cli.check) {
        // Everything that start-up checks before DPDK runs has been checked: captures, profiles, rules.
        for (const auto& w : warnings) weir::log::say(weir::log::Level::kWarning, "%s", w.c_str());
        std::string insp;
        if (rules) insp = ", " + std::to_string(rules->rules().size()) + " payload rule(s)";
        std::printf("weir: configuration OK: %zu port(s), %u worker(s), %zu exporter(s)%s%s\n", cfg.ports.size(),
                    cfg.workers, cfg.exporters.size(), insp.c_str(), warnings.empty() ? "" : " (see the warnings)");
        return 0;
    }
    for (const auto& w : warnings) weir::log::say(weir::log::Level::kWarning, "%s", w.c_str());

    // EAL.
    std::vector<std::string> eal_args = {"weir"};
    const std::vector<std::string> base = merge_eal(default_eal(cfg, vdev_room), cfg.eal);
    eal_args.insert(eal_args.end(), base.begin(), base.end());
    for (size_t p = 0; p < cfg.ports.size(); ++p) {
        if (rt.replays[p]) continue;  // a ring port, made after EAL
        eal_args.push_back(cfg.ports[p].is_vdev() ? "--vdev" : "-a");
        eal_args.push_back(devices[p]);
    }
    std::vector<char*> eal_argv;
    for (auto& s : eal_args) eal_argv.push_back(s.data());
    eal_argv.push_back(nullptr);
    weir::dpdk::route_dpdk_log();
    if (rte_eal_init(static_cast<int>(eal_args.size()), eal_argv.data()) < 0) {
        const int err = rte_errno;
        weir::log::say(weir::log::Level::kError, "weir: DPDK EAL initialisation failed: %s", rte_strerror(err));
        weir::log::say(weir::log::Level::kError, "weir: %s", eal_hint(err, cfg, eal_args).c_str());
        return kExitUsage;
    }

    const unsigned worker_lcores = rte_lcore_count() - 1;
    if (worker_lcores < cfg.workers) {
        weir::log::say(weir::log::Level::kError,
                       "weir: config: workers: %u workers need %u lcores besides the main one; EAL has %u\n",
                       cfg.workers, cfg.workers, worker_lcores);
        rte_eal_cleanup();
        return kExitUsage;
    }

    int rc = 0;
    try {
        // What each port will be set up with: its packet buffers must hold what it receives.
        std::vector<weir::dpdk::PortPlan> plans;
        uint32_t data_room = RTE_MBUF_DEFAULT_DATAROOM;
        bool inner_rss = !cfg.ports.empty();
        for (size_t p = 0; p < cfg.ports.size(); ++p) {
            const std::string what = "ports[" + std::to_string(p) + "]";
            uint16_t id;
            if (rt.replays[p]) {
                try {
                    id = rt.replays[p]->make_port("weir_replay" + std::to_string(p), static_cast<uint16_t>(cfg.workers),
                                                  static_cast<int>(rte_socket_id()));
                } catch (const std::exception& e) {
                    weir::log::say(weir::log::Level::kError, "weir: %s: %s\n", what.c_str(), e.what());
                    rte_eal_cleanup();
                    return kExitUsage;
                }
            } else if (rte_eth_dev_get_port_by_name(cfg.ports[p].name().c_str(), &id) != 0) {
                weir::log::say(weir::log::Level::kError,
                               "weir: config: %s.device: no DPDK port \"%s\" (a NIC must be bound to vfio-pci or "
                               "use a bifurcated driver such as mlx5; a vdev's driver reported why above)\n",
                               what.c_str(), cfg.ports[p].name().c_str());
                rte_eal_cleanup();
                return kExitUsage;
            }
            try {
                plans.push_back(weir::dpdk::plan_port(id, cfg.drivers_config, what));
            } catch (const std::exception& e) {
                weir::log::say(weir::log::Level::kError, "weir: config: %s\n", e.what());
                rte_eal_cleanup();
                return kExitUsage;
            }
            data_room = std::max(data_room, plans.back().data_room);
            inner_rss = inner_rss && plans.back().inner_rss;
        }

        // One mbuf pool per worker, on the worker's socket, for the ports a driver fills. A port
        // the capture reader feeds brings its own buffers: its queues get a token pool.
        unsigned filled = 0;
        for (size_t p = 0; p < cfg.ports.size(); ++p) filled += rt.replays[p] ? 0 : 1;
        std::vector<unsigned> lcores;
        unsigned lc;
        RTE_LCORE_FOREACH_WORKER(lc) {
            if (lcores.size() < cfg.workers) lcores.push_back(lc);
        }
        std::vector<rte_mempool*> pools;
        for (uint32_t w = 0; w < cfg.workers; ++w) {
            const std::string name = "weir_mbuf_w" + std::to_string(w);
            const unsigned n = filled ? cfg.mbufs_per_queue * filled : 512;
            rte_mempool* mp = rte_pktmbuf_pool_create(name.c_str(), n, 256, 0,
                                                      static_cast<uint16_t>(data_room + RTE_PKTMBUF_HEADROOM),
                                                      static_cast<int>(rte_lcore_to_socket_id(lcores[w])));
            if (!mp)
                throw std::runtime_error("cannot allocate " + std::to_string(n) + " mbufs of " +
                                         std::to_string(data_room) + " bytes for worker " + std::to_string(w) + ": " +
                                         rte_strerror(rte_errno) + " (more hugepages, or -m with --no-huge)");
            pools.push_back(mp);
        }

        for (size_t p = 0; p < cfg.ports.size(); ++p) {
            const std::string what = "ports[" + std::to_string(p) + "]";
            weir::dpdk::PortInfo pi;
            try {
                pi = weir::dpdk::start_port(plans[p], static_cast<uint16_t>(cfg.workers), pools,
                                            cfg.ports[p].rx_descriptors, what);
            } catch (const std::exception& e) {
                // Queue counts, descriptors, RSS: what the configuration asked of this device.
                weir::log::say(weir::log::Level::kError, "weir: config: %s\n", e.what());
                for (const auto& q : rt.ports) rte_eth_dev_stop(q.id);
                rte_eal_cleanup();
                return kExitUsage;
            }
            if (rt.replays[p]) {
                pi.name = cfg.ports[p].name();
                pi.dynfield_ns_per_unit = 1;  // the capture's times, in nanoseconds
                pi.rss = "the capture reader's symmetric hash of the outermost headers";
                pi.frames = "frames whole, in place in the mapped file";
            }
            weir::log::say(weir::log::Level::kInfo,
                           "weir: port %u %s (%s): %u RX queues x %u descriptors; RSS: %s; %s; profile %s\n", pi.id,
                           pi.name.c_str(), pi.driver.c_str(), pi.queues, pi.rx_descriptors, pi.rss.c_str(),
                           pi.frames.c_str(), pi.profile.source.c_str());
            rt.ports.push_back(pi);
        }
        const weir::dpdk::TimestampField tsf = weir::dpdk::timestamp_field();

        {
            auto ctx = std::make_shared<weir::exporter::ExportContext>();
            ctx->process_id = static_cast<uint32_t>(getpid());
            // Each port's records carry its configured ifIndex (ports[].ifindex), or its DPDK port id.
            for (size_t p = 0; p < rt.ports.size(); ++p) {
                const auto& pi = rt.ports[p];
                const uint32_t ifindex = cfg.ports[p].ifindex ? cfg.ports[p].ifindex : pi.id;
                ctx->interfaces.push_back(
                    {ifindex, cfg.ports[p].if_name.empty() ? pi.name : cfg.ports[p].if_name, pi.driver});
                if (ctx->ifindex.size() <= pi.id) {
                    const size_t from = ctx->ifindex.size();
                    ctx->ifindex.resize(pi.id + 1u);
                    for (size_t i = from; i < ctx->ifindex.size(); ++i) ctx->ifindex[i] = static_cast<uint32_t>(i);
                }
                ctx->ifindex[pi.id] = ifindex;
                if (ctx->direction.size() <= pi.id) ctx->direction.resize(pi.id + 1u, 0xFF);
                ctx->direction[pi.id] =
                    cfg.ports[p].direction < 0 ? 0xFF : static_cast<uint8_t>(cfg.ports[p].direction);
            }
            weir::Runtime* rtp = &rt;
            ctx->metering = [rtp](uint32_t domain) { return weir::metering(*rtp, domain); };
            ctx->sampling = {cfg.sample_interval, cfg.sample_random};
            if (!cfg.zones.empty()) ctx->zones = std::make_shared<const weir::zones::ZoneMap>(cfg.zones);
            rt.export_context = ctx;
        }
        for (const auto& ex : cfg.exporters)
            rt.exporters.push_back(weir::exporter::make_exporter(ex, cfg, rt.export_context));

        const uint64_t hz = rte_get_tsc_hz();
        const uint64_t tsc0 = rte_rdtsc();
        const uint64_t wall0 = wall_ns();
        rt.decode = cfg.tunnels.decode_options(cfg.want_macs(), cfg.want(&weir::config::Exporter::mpls));
        rt.decode.want_payload = cfg.inspect.on();
        // A tunneled conversation's two directions may arrive with different outer headers (a
        // VTEP's UDP source port is a hash of the inner packet): unless every port's device hashes
        // on the innermost headers, such packets go to the worker their inner conversation maps to.
        const bool handoff = cfg.workers > 1 && cfg.tunnels.mode != weir::packet::TunnelMode::kOuter && !inner_rss;
        for (uint32_t w = 0; w < cfg.workers; ++w) {
            weir::WorkerConfig wc;
            wc.index = w;
            wc.burst = cfg.burst;
            wc.domain = cfg.observation_domain + w;
            wc.decode = &rt.decode;
            wc.tunnel_contexts = cfg.tunnels.contexts_per_worker;
            wc.workers = cfg.workers;
            wc.handoff = handoff;
            wc.sample_interval = cfg.sample_interval;
            wc.sample_random = cfg.sample_random;
            wc.table.macs = cfg.want_macs();
            wc.table.mpls = cfg.want(&weir::config::Exporter::mpls);
            wc.table.rtt = cfg.want(&weir::config::Exporter::rtt);
            wc.table.sizes = cfg.want(&weir::config::Exporter::sizes);
            const weir::inspect::InspectConfig icfg = weir::inspect_config(cfg.inspect, cfg.capture);
            wc.inspect = rules ? &icfg : nullptr;  // copied by the worker
            wc.capture_slots = cfg.capture.slots_per_worker;
            wc.capture_snaplen = cfg.capture.snaplen;
            weir::detect::ObserverConfig dcfg = weir::observer_config(cfg.detect);
            dcfg.wait = cfg.replay;
            wc.detect = cfg.detect.enabled ? &dcfg : nullptr;  // copied by the worker

            wc.buffers = cfg.export_buffers;
            wc.max_delay_cycles = hz / 1000 * cfg.max_delay_ms;
            wc.replay = cfg.replay;
            wc.table.capacity = cfg.flow_capacity;
            wc.table.defer_init = true;       // zeroed by the worker on its own lcore (NUMA first touch)
            wc.table.prefault = !cfg.replay;  // a replay takes pages as flows come
            wc.table.idle_ns = static_cast<uint64_t>(cfg.idle_timeout_s * 1e9);
            wc.table.active_ns = static_cast<uint64_t>(cfg.active_timeout_s * 1e9);
            wc.table.tcp_end_ns = static_cast<uint64_t>(cfg.tcp_end_timeout_s * 1e9);
            std::vector<weir::RxQueueRef> queues;
            for (size_t p = 0; p < rt.ports.size(); ++p) {
                const uint16_t lt = linktypes[p].empty() ? uint16_t{weir::packet::kLinkEthernet}
                                                         : static_cast<uint16_t>(linktypes[p][w]);
                const uint32_t unit = tsf.offset >= 0 ? rt.ports[p].dynfield_ns_per_unit : 0;
                queues.push_back(weir::RxQueueRef{rt.ports[p].id, static_cast<uint16_t>(w), lt, unit});
            }
            rt.workers.push_back(
                std::make_unique<weir::Worker>(wc, std::move(queues), tsf.offset, tsf.flag, hz, wall0, tsc0));
        }
        if (handoff) {
            // One hand-off ring per worker, fed by all the others (multi-producer, single consumer).
            uint32_t size = 1;
            while (size < cfg.tunnels.handoff_ring) size <<= 1;
            std::vector<rte_ring*> inbound(cfg.workers);
            for (uint32_t w = 0; w < cfg.workers; ++w) {
                const std::string name = "weir_handoff_w" + std::to_string(w);
                inbound[w] = rte_ring_create_elem(name.c_str(), sizeof(weir::Handoff), size,
                                                  static_cast<int>(rte_lcore_to_socket_id(lcores[w])), RING_F_SC_DEQ);
                if (!inbound[w])
                    throw std::runtime_error("cannot create hand-off ring " + name + ": " + rte_strerror(rte_errno));
                rt.handoff_rings.push_back(inbound[w]);
            }
            for (uint32_t w = 0; w < cfg.workers; ++w) rt.workers[w]->connect(inbound, &rt.rx_stopped);
        }
        if (rules) rt.inspection = weir::start_inspection(cfg, rules, rt.workers);
        if (rules && cfg.capture.on()) rt.capture = weir::start_capture(cfg.capture, rt.workers);
        if (cfg.detect.enabled) rt.detection = weir::start_detection(cfg, rt.workers);
        rt.matrix = weir::start_matrix(cfg);
        rt.cfg = cfg;
        weir::log::say(weir::log::Level::kInfo,
                       "weir: %u worker(s), %u flows each (%.1f MiB per table), exporting to %zu collector(s)\n",
                       cfg.workers, cfg.flow_capacity, rt.workers[0]->table_memory() / 1048576.0, cfg.exporters.size());
        {
            std::string ports;
            for (const auto& [type, list] : cfg.tunnels.udp_ports)
                for (uint16_t port : list)
                    ports += (ports.empty() ? "" : ", ") + std::string(weir::packet::tunnel_name(type)) + " " +
                        std::to_string(port);
            weir::log::say(weir::log::Level::kInfo,
                           "weir: tunnels: flows keyed on %s headers%s (UDP: %s; nesting up to %u, %u tunnel contexts "
                           "per worker)%s\n",
                           cfg.tunnels.mode == weir::packet::TunnelMode::kOuter       ? "the outer"
                               : cfg.tunnels.mode == weir::packet::TunnelMode::kInner ? "the inner"
                                                                                      : "both the inner and the outer",
                           cfg.tunnels.mode == weir::packet::TunnelMode::kOuter ? "" : ", the tunnel kept in the key",
                           ports.c_str(), cfg.tunnels.max_depth, cfg.tunnels.contexts_per_worker,
                           handoff ? "; tunneled packets go to the worker of their inner conversation"
                               : inner_rss && cfg.workers > 1
                               ? "; the NICs spread tunneled packets by their inner headers"
                               : "");
        }

        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        rt.started_s = t.tv_sec + t.tv_nsec / 1e9;
        rt.started_unix_s = wall_ns() / 1e9;
        rt.last_reload_ok_unix_s = rt.started_unix_s;
        rt.history.configure(cfg.history_step_s);
        std::unique_ptr<weir::Management> mgmt, scrape;
        if (!cfg.management.empty() || !cfg.metrics_listen.empty()) {
            try {
                const weir::web::WebConfig* wc = web.empty() ? nullptr : &web;
                if (!cfg.management.empty()) mgmt = std::make_unique<weir::Management>(rt, cfg.management, false, wc);
                if (!cfg.metrics_listen.empty())
                    scrape = std::make_unique<weir::Management>(rt, cfg.metrics_listen, true, wc);
            } catch (const std::exception& e) {
                weir::log::say(weir::log::Level::kError, "weir: config: %s\n", e.what());
                rt.workers.clear();
                for (const auto& p : rt.ports) rte_eth_dev_stop(p.id);
                rte_eal_cleanup();
                return kExitUsage;
            }
            const char* scheme = web.tls ? "https" : "http";
            const char* auth = web.users.empty() ? "" : "; basic auth";
            if (mgmt)
                weir::log::say(
                    weir::log::Level::kInfo,
                    "weir: metrics and status on %s://%s/ (/metrics /status /flows/top /events /healthz%s)\n", scheme,
                    cfg.management.c_str(), auth);
            if (scrape)
                weir::log::say(weir::log::Level::kInfo, "weir: metrics only on %s://%s/ (/metrics /healthz%s)\n",
                               scheme, cfg.metrics_listen.c_str(), auth);
        }
        for (uint32_t w = 0; w < cfg.workers; ++w)
            rte_eal_remote_launch(weir::Worker::lcore_main, rt.workers[w].get(), lcores[w]);
        // Workers zero their flow tables first; a live port's RX ring absorbs what arrives meanwhile.
        for (const auto& w : rt.workers)
            while (!w->ready() && !w->done()) rte_delay_us_sleep(1000);
        weir::notify::send("READY=1\nSTATUS=capturing on " + std::to_string(rt.ports.size()) + " port(s) with " +
                           std::to_string(cfg.workers) + " worker(s)");
        for (auto& r : rt.replays)
            if (r) r->start();
        weir::control_loop(rt);
        rte_eal_mp_wait_lcore();
        for (auto& r : rt.replays)
            if (r) r->stop();
        if (rt.capture) weir::stop_capture(*rt.capture);  // everything the workers chose is written
        if (!weir::report(rt)) rc = 1;
        mgmt.reset();  // their threads read rt.workers
        scrape.reset();
    } catch (const std::exception& e) {
        weir::log::say(weir::log::Level::kError, "weir: %s\n", e.what());
        rc = 1;
    }
    for (const auto& p : rt.ports) {
        rte_eth_dev_stop(p.id);
        rte_eth_dev_close(p.id);
    }
    rt.capture.reset();  // its thread reads the workers' rings
    rt.workers.clear();
    rt.replays.clear();  // the mappings, after every packet that points into them
    for (rte_ring* r : rt.handoff_rings) rte_ring_free(r);
    rte_eal_cleanup();
    return rc;
}
