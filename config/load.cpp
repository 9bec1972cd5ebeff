// TOML -> validated Config (DESIGN §9). The loader walks the document once, section by
// section, collecting every problem as "FILE:LINE: key.path: message" instead of stopping at
// the first: an operator fixing a config wants the whole list. Unknown keys are errors
// because a misspelt key silently falling back to its default is how gates get left open.
#include "config/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "admission/version.hpp"

namespace joingate::config {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// The schema: every key each table may hold. Arrays of tables are named without an index.
const std::map<std::string_view, std::vector<std::string_view>>& schemas() {
    static const std::map<std::string_view, std::vector<std::string_view>> s{
        {"",
         {"member", "inbound", "outbound", "cluster", "tls", "admission", "profile", "admin", "log",
          "limits"}},
        {"member", {"name", "version", "profile", "protocol", "peer", "client", "probe_interval"}},
        {"inbound", {"listen"}},
        {"outbound", {"listen", "route"}},
        {"outbound.route", {"listen", "peer"}},
        {"cluster", {"peers", "bootstrap", "view_interval"}},
        {"tls", {"cert", "key", "ca", "allowed_peers"}},
        {"admission",
         {"mode", "policy", "fail", "max_minor_skew", "allow_older", "on_reject", "retry",
          "override"}},
        {"admission.retry", {"initial", "max", "multiplier", "jitter", "deadline", "hold"}},
        {"admission.override", {"member", "version", "until", "reason"}},
        {"profile",
         {"join_routes", "version_header", "body_version_pointer", "version_probe_url",
          "version_probe_pointer", "leader_probe_url", "leader_probe_pointer",
          "leader_probe_expected"}},
        {"profile.join_routes", {"method", "prefix"}},
        {"admin", {"listen"}},
        {"log", {"format", "level"}},
        {"limits",
         {"max_header_bytes", "max_uri_bytes", "handshake_timeout", "header_timeout",
          "connect_timeout", "idle_timeout", "drain_timeout", "max_connections"}},
    };
    return s;
}

// Schemas that are arrays of tables, for hints ("it belongs in [[outbound.route]]").
bool is_table_array(std::string_view schema) {
    return schema == "outbound.route" || schema == "admission.override" ||
           schema == "profile.join_routes";
}

// Optimal string alignment distance: a transposition ("nmae") counts as one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[n][m];
}

bool is_bare_key(std::string_view k) {
    return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

std::string join_key(const std::string& base, std::string_view key) {
    std::string k = is_bare_key(key) ? std::string(key) : "\"" + std::string(key) + "\"";
    return base.empty() ? k : base + "." + k;
}

std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

const char* type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::table:
        return "a table";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

int line_of(const toml::node& n) {
    return static_cast<int>(n.source().begin.line);
}

bool overlapping(const HostPort& a, const HostPort& b) {
    if (a.port == 0 || b.port == 0 || a.port != b.port)
        return false;
    auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
    auto canonical = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s == "localhost" ? std::string("127.0.0.1") : s;
    };
    return wildcard(a.host) || wildcard(b.host) || canonical(a.host) == canonical(b.host);
}

bool valid_json_pointer(std::string_view p) {
    if (p.empty())
        return true;
    if (p.front() != '/')
        return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1')))
            return false;
    }
    return true;
}

// RFC 9110 token: header names and methods.
bool is_token(std::string_view s) {
    static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               extra.find(c) != std::string_view::npos;
    });
}

std::string trim(std::string_view s) {
    auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos)
        return {};
    auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

class Loader;

// One TOML table being read: knows its key path and header line, reports unknown keys on
// construction, and offers typed reads that report wrong types and missing keys.
class Section {
  public:
    Section(Loader& loader, const toml::table* table, std::string path, int line,
            std::string_view schema);

    bool present() const { return table_ != nullptr; }
    int line() const { return line_; }
    const std::string& path() const { return path_; }
    std::string key_path(std::string_view k) const { return join_key(path_, k); }
    const toml::node* node(std::string_view k) const;
    int line_of(std::string_view k) const;

    void error(std::string_view k, std::string message) const;
    void missing(std::string_view k) const;
    void wrong_type(std::string_view k, std::string_view expected) const;

    // Each read returns nullopt when the key is absent (reported when required) or wrong
    // (always reported); callers keep their defaults then.
    std::optional<std::string> string(std::string_view k, bool required = false) const;
    std::optional<bool> boolean(std::string_view k) const;
    std::optional<std::int64_t> integer(std::string_view k) const;
    std::optional<double> number(std::string_view k) const;
    std::optional<Duration> duration(std::string_view k, bool allow_zero) const;
    std::optional<HostPort> host_port(std::string_view k, bool required) const;
    // A host:port to bind: the host must be an IP address or "localhost", since names are
    // not resolved for binding (and a name with several addresses has no single socket).
    std::optional<HostPort> listen_address(std::string_view k, bool required) const;
    const toml::array* array(std::string_view k, bool required = false) const;

    template <class E>
    std::optional<E> choice(std::string_view k,
                            std::initializer_list<std::pair<std::string_view, E>> options) const {
        auto s = string(k);
        if (!s)
            return std::nullopt;
        for (const auto& [name, value] : options) {
            if (*s == name)
                return value;
        }
        std::string list;
        for (const auto& opt : options) {
            if (!list.empty())
                list += ", ";
            list += in_quotes(opt.first);
        }
        error(k, "must be one of " + list + "; got " + in_quotes(*s));
        return std::nullopt;
    }

    Section table(std::string_view k) const;
    std::vector<Section> table_array(std::string_view k) const;

  private:
    Loader& loader_;
    const toml::table* table_;
    std::string path_;
    int line_;
    std::string schema_;
};

class Loader {
  public:
    Loader(std::string file, Clock::time_point now) : file_(std::move(file)), now_(now) {
        cfg_.file = file_;
    }

    LoadResult run(std::string_view text);

    void error(int line, std::string key, std::string message) {
        errors_.push_back({file_, line > 0 ? line : 1, std::move(key), std::move(message)});
    }
    void warning(int line, std::string key, std::string message) {
        warnings_.push_back({file_, line > 0 ? line : 1, std::move(key), std::move(message)});
    }
    void note_line(const std::string& key, int line) {
        if (line > 0)
            cfg_.lines.emplace(key, line);
    }

  private:
    void load_member(const Section& root);
    void load_inbound(const Section& root);
    void load_outbound(const Section& root);
    void load_cluster(const Section& root);
    void load_tls(const Section& root);
    void load_admission(const Section& root);
    void load_retry(const Section& admission);
    void load_override(const Section& o);
    void load_profile(const Section& root);
    void load_admin(const Section& root);
    void load_log(const Section& root);
    void load_limits(const Section& root);
    void check_listens();
    std::optional<std::string> tls_path(const Section& s, std::string_view k);
    std::optional<Clock::time_point> until(const Section& s);

    struct Listen {
        std::string key;
        HostPort addr;
        int line; // 0 = a default, not written in the file
    };

    std::string file_;
    Clock::time_point now_;
    Config cfg_;
    std::vector<Error> errors_;
    std::vector<Error> warnings_;
    std::vector<Listen> listens_;
    bool member_version_auto_ = true;
    bool member_profile_valid_ = true;
    int member_peer_line_ = 0;
};

// ---- Section -------------------------------------------------------------------------------

Section::Section(Loader& loader, const toml::table* table, std::string path, int line,
                 std::string_view schema)
    : loader_(loader), table_(table), path_(std::move(path)), line_(line > 0 ? line : 1),
      schema_(schema) {
    if (!table_)
        return;
    const auto& known = schemas().at(schema_);
    for (auto&& [key, value] : *table_) {
        std::string_view k = key.str();
        if (std::find(known.begin(), known.end(), k) != known.end())
            continue;
        std::string message = "unknown key";
        std::string_view best;
        std::size_t best_d = 3;
        for (std::string_view candidate : known) {
            std::size_t d = edit_distance(k, candidate);
            if (d < best_d && d * 2 <= std::max(k.size(), candidate.size())) {
                best = candidate;
                best_d = d;
            }
        }
        if (!best.empty()) {
            message += " (did you mean " + key_path(best) + "?)";
        } else {
            std::string homes;
            for (const auto& [name, keys] : schemas()) {
                if (name == schema_ || name.empty() ||
                    std::find(keys.begin(), keys.end(), k) == keys.end())
                    continue;
                if (!homes.empty())
                    homes += " or ";
                homes += is_table_array(name) ? "[[" + std::string(name) + "]]"
                                              : "[" + std::string(name) + "]";
            }
            if (!homes.empty())
                message += " (it belongs in " + homes + ")";
        }
        int l = static_cast<int>(key.source().begin.line);
        loader_.error(l > 0 ? l : config::line_of(value), key_path(k), message);
    }
}

const toml::node* Section::node(std::string_view k) const {
    if (!table_)
        return nullptr;
    const toml::node* n = table_->get(k);
    if (n)
        loader_.note_line(key_path(k), config::line_of(*n));
    return n;
}

int Section::line_of(std::string_view k) const {
    const toml::node* n = table_ ? table_->get(k) : nullptr;
    int l = n ? config::line_of(*n) : 0;
    return l > 0 ? l : line_;
}

void Section::error(std::string_view k, std::string message) const {
    loader_.error(line_of(k), key_path(k), std::move(message));
}

void Section::missing(std::string_view k) const {
    loader_.error(line_, key_path(k), "required key missing");
}

void Section::wrong_type(std::string_view k, std::string_view expected) const {
    const toml::node* n = node(k);
    error(k, "expected " + std::string(expected) + ", got " + (n ? type_name(*n) : "nothing"));
}

std::optional<std::string> Section::string(std::string_view k, bool required) const {
    const toml::node* n = node(k);
    if (!n) {
        if (required)
            missing(k);
        return std::nullopt;
    }
    if (const auto* s = n->as_string())
        return s->get();
    wrong_type(k, "a string");
    return std::nullopt;
}

std::optional<bool> Section::boolean(std::string_view k) const {
    const toml::node* n = node(k);
    if (!n)
        return std::nullopt;
    if (const auto* b = n->as_boolean())
        return b->get();
    wrong_type(k, "a boolean");
    return std::nullopt;
}

std::optional<std::int64_t> Section::integer(std::string_view k) const {
    const toml::node* n = node(k);
    if (!n)
        return std::nullopt;
    if (const auto* i = n->as_integer())
        return i->get();
    wrong_type(k, "an integer");
    return std::nullopt;
}

std::optional<double> Section::number(std::string_view k) const {
    const toml::node* n = node(k);
    if (!n)
        return std::nullopt;
    if (const auto* i = n->as_integer())
        return static_cast<double>(i->get());
    if (const auto* f = n->as_floating_point()) {
        if (!std::isfinite(f->get())) {
            error(k, "must be a finite number");
            return std::nullopt;
        }
        return f->get();
    }
    wrong_type(k, "a number");
    return std::nullopt;
}

std::optional<Duration> Section::duration(std::string_view k, bool allow_zero) const {
    const toml::node* n = node(k);
    if (!n)
        return std::nullopt;
    const auto* s = n->as_string();
    if (!s) {
        wrong_type(k, "a duration string like \"10s\"");
        return std::nullopt;
    }
    auto d = parse_duration(s->get());
    if (!d) {
        error(k, "not a duration: " + in_quotes(s->get()) +
                     " (use a number and a unit: \"250ms\", \"10s\", \"5m\", \"1h\", \"1m30s\")");
        return std::nullopt;
    }
    if (d->count() == 0 && !allow_zero) {
        error(k, "must be more than 0");
        return std::nullopt;
    }
    return d;
}

std::optional<HostPort> Section::host_port(std::string_view k, bool required) const {
    auto s = string(k, required);
    if (!s)
        return std::nullopt;
    std::string why;
    auto hp = parse_host_port(*s, &why);
    if (!hp)
        error(k, why);
    return hp;
}

std::optional<HostPort> Section::listen_address(std::string_view k, bool required) const {
    auto hp = host_port(k, required);
    if (!hp)
        return hp;
    const bool ip = hp->host.find(':') != std::string::npos ||
                    std::all_of(hp->host.begin(), hp->host.end(),
                                [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (!ip && hp->host != "localhost") {
        error(k, "cannot listen on " + in_quotes(hp->text()) +
                     ": the host must be an IP address (0.0.0.0, 127.0.0.1, [::]) or localhost");
        return std::nullopt;
    }
    return hp;
}

const toml::array* Section::array(std::string_view k, bool required) const {
    const toml::node* n = node(k);
    if (!n) {
        if (required)
            missing(k);
        return nullptr;
    }
    if (const auto* a = n->as_array())
        return a;
    wrong_type(k, "an array");
    return nullptr;
}

Section Section::table(std::string_view k) const {
    std::string schema = schema_.empty() ? std::string(k) : schema_ + "." + std::string(k);
    const toml::node* n = node(k);
    if (!n)
        return Section(loader_, nullptr, key_path(k), line_, schema);
    if (const auto* t = n->as_table())
        return Section(loader_, t, key_path(k), config::line_of(*n), schema);
    wrong_type(k, "a table");
    return Section(loader_, nullptr, key_path(k), line_of(k), schema);
}

std::vector<Section> Section::table_array(std::string_view k) const {
    std::string schema = schema_.empty() ? std::string(k) : schema_ + "." + std::string(k);
    std::vector<Section> out;
    const toml::node* n = node(k);
    if (!n)
        return out;
    const auto* a = n->as_array();
    if (!a) {
        wrong_type(k, "an array of tables ([[" + key_path(k) + "]])");
        return out;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& elem = (*a)[i];
        std::string path = key_path(k) + "[" + std::to_string(i) + "]";
        int l = config::line_of(elem);
        if (const auto* t = elem.as_table()) {
            loader_.note_line(path, l);
            out.emplace_back(loader_, t, path, l, schema);
        } else {
            loader_.error(l > 0 ? l : line_of(k), path,
                          std::string("expected a table, got ") + type_name(elem));
        }
    }
    return out;
}

// Reads an array of strings, reporting non-strings per element; fn(path, line, value).
template <class Fn>
void for_each_string(Loader& loader, const Section& s, std::string_view k, Fn fn) {
    const toml::array* a = s.array(k);
    if (!a)
        return;
    for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& elem = (*a)[i];
        std::string path = s.key_path(k) + "[" + std::to_string(i) + "]";
        int l = line_of(elem) > 0 ? line_of(elem) : s.line_of(k);
        if (const auto* str = elem.as_string())
            fn(path, l, str->get());
        else
            loader.error(l, path, std::string("expected a string, got ") + type_name(elem));
    }
}

// ---- Loader ---------------------------------------------------------------------------------

LoadResult Loader::run(std::string_view text) {
    LoadResult result;
    toml::table root;
    try {
        root = toml::parse(text, std::string_view(file_));
    } catch (const toml::parse_error& e) {
        error(static_cast<int>(e.source().begin.line), "", std::string(e.description()));
        result.errors = std::move(errors_);
        return result;
    }
    Section r(*this, &root, "", 1, "");
    load_member(r);
    load_inbound(r);
    load_outbound(r);
    load_cluster(r);
    load_tls(r);
    load_admission(r);
    load_profile(r);
    load_admin(r);
    load_log(r);
    load_limits(r);
    check_listens();

    auto by_line = [](const Error& a, const Error& b) { return a.line < b.line; };
    std::stable_sort(errors_.begin(), errors_.end(), by_line);
    std::stable_sort(warnings_.begin(), warnings_.end(), by_line);
    result.errors = std::move(errors_);
    result.warnings = std::move(warnings_);
    if (result.errors.empty())
        result.config = std::make_shared<const Config>(std::move(cfg_));
    return result;
}

void Loader::load_member(const Section& root) {
    Section m = root.table("member");
    Member& out = cfg_.member;
    if (auto name = m.string("name", true)) {
        if (name->empty()) {
            m.error("name", "must not be empty");
        } else if (std::any_of(name->begin(), name->end(),
                               [](char c) { return c < 0x20 || c > 0x7e; }) ||
                   name->front() == ' ' || name->back() == ' ') {
            m.error("name", "must be printable ASCII without leading or trailing spaces (it "
                            "travels in the X-Joingate-Member header); got " +
                                in_quotes(*name));
        } else {
            out.name = *name;
        }
    }
    if (auto v = m.string("version")) {
        if (*v == "auto") {
            out.version = *v;
        } else {
            std::string why;
            if (admission::parse_version(*v, &why)) {
                out.version = *v;
                member_version_auto_ = false;
            } else {
                m.error("version", why + " (or \"auto\" to ask the local peer)");
                member_version_auto_ = false;
            }
        }
    }
    if (auto p = m.choice<Profile>(
            "profile",
            {{"etcd3", Profile::etcd3}, {"etcd2", Profile::etcd2}, {"generic", Profile::generic}}))
        out.profile = *p;
    else
        member_profile_valid_ = !m.node("profile");
    if (auto p = m.string("protocol")) {
        std::string why;
        if (auto range = admission::parse_protocol_range(*p, &why))
            out.protocol = *range;
        else
            m.error("protocol", why);
    }
    if (auto peer = m.string("peer", true)) {
        member_peer_line_ = m.line_of("peer");
        std::string why;
        if (auto url = parse_http_url(*peer, false, &why))
            out.peer = *url;
        else
            m.error("peer", why);
    }
    if (auto client = m.string("client")) {
        std::string why;
        if (auto url = parse_http_url(*client, false, &why))
            out.client = *url;
        else
            m.error("client", why);
    }
    if (auto d = m.duration("probe_interval", false))
        out.probe_interval = *d;
}

void Loader::load_inbound(const Section& root) {
    Section s = root.table("inbound");
    if (auto hp = s.listen_address("listen", true)) {
        cfg_.inbound.listen = *hp;
        listens_.push_back({"inbound.listen", *hp, s.line_of("listen")});
    }
}

void Loader::load_outbound(const Section& root) {
    Section s = root.table("outbound");
    if (auto hp = s.listen_address("listen", false)) {
        cfg_.outbound.listen = *hp;
        listens_.push_back({"outbound.listen", *hp, s.line_of("listen")});
    }
    for (const Section& r : s.table_array("route")) {
        auto listen = r.listen_address("listen", true);
        auto peer = r.host_port("peer", true);
        if (listen)
            listens_.push_back({r.key_path("listen"), *listen, r.line_of("listen")});
        if (listen && peer)
            cfg_.outbound.routes.push_back({*listen, *peer});
    }
}

void Loader::load_cluster(const Section& root) {
    Section s = root.table("cluster");
    Cluster& out = cfg_.cluster;
    for_each_string(*this, s, "peers",
                    [&](const std::string& path, int line, const std::string& v) {
                        std::string why;
                        auto hp = parse_host_port(v, &why);
                        if (!hp) {
                            error(line, path, why);
                            return;
                        }
                        if (std::find(out.peers.begin(), out.peers.end(), *hp) != out.peers.end()) {
                            error(line, path, hp->text() + " is listed twice");
                            return;
                        }
                        out.peers.push_back(*hp);
                    });
    if (auto b = s.boolean("bootstrap"))
        out.bootstrap = *b;
    if (auto d = s.duration("view_interval", false))
        out.view_interval = *d;
}

std::optional<std::string> Loader::tls_path(const Section& s, std::string_view k) {
    auto v = s.string(k, true);
    if (!v)
        return std::nullopt;
    if (v->empty()) {
        s.error(k, "must not be empty");
        return std::nullopt;
    }
    fs::path p(*v);
    std::error_code ec;
    if (p.is_relative()) {
        fs::path base = fs::path(file_).parent_path();
        p = fs::absolute(base / p, ec);
        if (ec)
            p = base / fs::path(*v);
    }
    p = p.lexically_normal();
    std::string shown = p.string();
    if (shown != *v)
        shown += " (from " + in_quotes(*v) + ", relative to the config file)";
    fs::file_status st = fs::status(p, ec);
    if (!fs::exists(st)) {
        s.error(k, "no such file: " + shown);
        return std::nullopt;
    }
    if (fs::is_directory(st)) {
        s.error(k, "is a directory, not a file: " + shown);
        return std::nullopt;
    }
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s.error(k, "cannot read " + shown + ": " + std::strerror(errno));
        return std::nullopt;
    }
    ::close(fd);
    return p.string();
}

void Loader::load_tls(const Section& root) {
    Section s = root.table("tls");
    Tls& out = cfg_.tls;
    if (auto p = tls_path(s, "cert"))
        out.cert = *p;
    if (auto p = tls_path(s, "key"))
        out.key = *p;
    if (auto p = tls_path(s, "ca"))
        out.ca = *p;
    for_each_string(*this, s, "allowed_peers",
                    [&](const std::string& path, int line, const std::string& v) {
                        if (v.empty())
                            error(line, path, "must not be empty");
                        else
                            out.allowed_peers.push_back(v);
                    });
}

void Loader::load_admission(const Section& root) {
    Section s = root.table("admission");
    Admission& out = cfg_.admission;
    if (auto m = s.choice<Mode>("mode", {{"leader", Mode::leader},
                                         {"follower", Mode::follower},
                                         {"both", Mode::both},
                                         {"observe", Mode::observe}}))
        out.mode = *m;
    if (auto p =
            s.choice<Policy>("policy", {{"exact", Policy::exact},
                                        {"not-older-than-leader", Policy::not_older_than_leader},
                                        {"skew", Policy::skew},
                                        {"protocol", Policy::protocol}}))
        out.policy = *p;
    if (auto f =
            s.choice<FailMode>("fail", {{"closed", FailMode::closed}, {"open", FailMode::open}}))
        out.fail = *f;
    if (auto n = s.integer("max_minor_skew")) {
        if (*n < 0 || *n > std::numeric_limits<std::uint32_t>::max())
            s.error("max_minor_skew", "must be an integer of 0 or more, got " + std::to_string(*n));
        else
            out.max_minor_skew = static_cast<std::uint32_t>(*n);
    }
    if (auto b = s.boolean("allow_older"))
        out.allow_older = *b;
    if (auto o =
            s.choice<OnReject>("on_reject", {{"wait", OnReject::wait}, {"exit", OnReject::exit}}))
        out.on_reject = *o;
    load_retry(s);
    for (const Section& o : s.table_array("override"))
        load_override(o);
}

void Loader::load_retry(const Section& admission) {
    Section s = admission.table("retry");
    Retry& out = cfg_.admission.retry;
    bool initial_ok = true;
    bool max_ok = true;
    if (auto d = s.duration("initial", false))
        out.initial = *d;
    else
        initial_ok = !s.node("initial");
    if (auto d = s.duration("max", false))
        out.max = *d;
    else
        max_ok = !s.node("max");
    if (initial_ok && max_ok && out.initial > out.max) {
        std::string k = s.node("initial") ? "initial" : "max";
        s.error(k, "initial " + format_duration(out.initial) + " is more than max " +
                       format_duration(out.max) + " (the first wait cannot exceed the longest)");
    }
    if (auto m = s.number("multiplier")) {
        if (*m < 1.0) {
            std::ostringstream text;
            text << *m;
            s.error("multiplier", "must be 1 or more (waits never shrink), got " + text.str());
        } else {
            out.multiplier = *m;
        }
    }
    if (auto j = s.number("jitter")) {
        if (*j < 0.0 || *j > 1.0) {
            std::ostringstream text;
            text << *j;
            s.error("jitter", "must be between 0 and 1, got " + text.str());
        } else {
            out.jitter = *j;
        }
    }
    if (auto d = s.duration("deadline", true))
        out.deadline = *d;
    if (auto d = s.duration("hold", true)) {
        if (*d > Duration{9000})
            s.error("hold", format_duration(*d) +
                                " is more than 9s (etcd gives up on a /members request after "
                                "10 s and exits once every peer failed; a longer hold turns a "
                                "wait into a crash)");
        else
            out.hold = *d;
    }
}

std::optional<Clock::time_point> Loader::until(const Section& s) {
    const toml::node* n = s.node("until");
    if (!n) {
        s.missing("until");
        return std::nullopt;
    }
    if (const auto* v = n->as_date_time()) {
        const toml::date_time& dt = v->get();
        if (!dt.offset) {
            s.error("until", "needs a UTC offset, e.g. 2026-11-25T10:00:00Z (a local time is "
                             "ambiguous across members)");
            return std::nullopt;
        }
        using namespace std::chrono;
        year_month_day ymd{year{dt.date.year}, month{dt.date.month}, day{dt.date.day}};
        if (!ymd.ok()) {
            s.error("until", "not a valid date");
            return std::nullopt;
        }
        auto t = sys_days{ymd} + hours{dt.time.hour} + minutes{dt.time.minute} +
                 seconds{dt.time.second} + nanoseconds{dt.time.nanosecond} -
                 minutes{dt.offset->minutes};
        return time_point_cast<Clock::duration>(t);
    }
    if (const auto* str = n->as_string()) {
        if (auto t = parse_rfc3339(str->get()))
            return t;
        s.error("until", "not an RFC 3339 time with offset: " + in_quotes(str->get()) +
                             " (e.g. 2026-11-25T10:00:00Z)");
        return std::nullopt;
    }
    s.wrong_type("until", "a date-time like 2026-11-25T10:00:00Z");
    return std::nullopt;
}

void Loader::load_override(const Section& s) {
    Override o;
    o.line = s.line();
    bool ok = true;
    auto member = s.string("member");
    auto version = s.string("version");
    bool has_member = s.node("member") != nullptr;
    bool has_version = s.node("version") != nullptr;
    if (has_member && has_version) {
        s.error("version", "set member or version, not both (one override, one subject)");
        ok = false;
    } else if (!has_member && !has_version) {
        error(s.line(), s.path(), "needs member or version (whom the override admits)");
        ok = false;
    }
    if (member) {
        if (member->empty()) {
            s.error("member", "must not be empty");
            ok = false;
        }
        o.member = member;
    } else if (has_member) {
        ok = false;
    }
    if (version) {
        std::string why;
        if (!admission::parse_version(*version, &why)) {
            s.error("version", why);
            ok = false;
        }
        o.version = version;
    } else if (has_version) {
        ok = false;
    }
    auto t = until(s);
    if (t) {
        o.until = *t;
        if (*t > now_ + std::chrono::hours{24}) {
            s.error("until", format_rfc3339(*t) + " is more than 24h ahead (now " +
                                 format_rfc3339(now_) +
                                 "); overrides are break-glass and must expire within a day");
            ok = false;
        } else if (*t <= now_) {
            warning(s.line_of("until"), s.key_path("until"),
                    "override expired at " + format_rfc3339(*t) + " (now " + format_rfc3339(now_) +
                        "); it is ignored");
        }
    } else {
        ok = false;
    }
    if (auto reason = s.string("reason", true)) {
        if (trim(*reason).empty()) {
            s.error("reason", "must not be empty (say why the gate is bypassed)");
            ok = false;
        }
        o.reason = *reason;
    } else {
        ok = false;
    }
    if (ok)
        cfg_.admission.overrides.push_back(std::move(o));
}

void Loader::load_profile(const Section& root) {
    const bool generic = cfg_.member.profile == Profile::generic;
    const toml::node* node = root.node("profile");
    if (!generic) {
        // A built-in profile is data compiled in; a [profile] table would be silently
        // ignored, so it is refused (unless member.profile itself was wrong: one error is
        // enough).
        if (node && member_profile_valid_)
            error(line_of(*node), "profile",
                  std::string("only allowed when member.profile = \"generic\" (member.profile "
                              "is ") +
                      in_quotes(to_string(cfg_.member.profile)) + ")");
        return;
    }
    Section s = root.table("profile");
    if (!s.present()) {
        if (!node)
            error(cfg_.lines.count("member.profile") ? cfg_.lines["member.profile"] : 1, "profile",
                  "required when member.profile = \"generic\" (a [profile] table "
                  "saying which requests are joins and where versions are)");
        return;
    }

    GenericProfile out;
    // Join routes: at least one, each a path prefix and optionally a method.
    if (s.array("join_routes", true)) {
        std::vector<Section> routes = s.table_array("join_routes");
        if (routes.empty() && s.node("join_routes")->as_array()->empty())
            s.error("join_routes", "must list at least one route, e.g. "
                                   "{ method = \"PUT\", prefix = \"/join\" }");
        for (const Section& r : routes) {
            JoinRoute jr;
            if (auto m = r.string("method")) {
                if (!m->empty() && (!is_token(*m) || std::any_of(m->begin(), m->end(), [](char c) {
                        return std::islower(static_cast<unsigned char>(c));
                    })))
                    r.error("method", "not an HTTP method: " + in_quotes(*m) +
                                          " (capitals, e.g. \"PUT\"; omit for any method)");
                jr.method = *m;
            }
            if (auto p = r.string("prefix", true)) {
                if (p->empty() || p->front() != '/')
                    r.error("prefix", "must be a path starting with '/', got " + in_quotes(*p));
                jr.path_prefix = *p;
            }
            out.join_routes.push_back(std::move(jr));
        }
    }
    if (auto h = s.string("version_header")) {
        if (!h->empty() && !is_token(*h))
            s.error("version_header", "not an HTTP header name: " + in_quotes(*h));
        out.version_header = *h;
    }
    auto pointer = [&](std::string_view k, bool required) -> std::string {
        auto p = s.string(k, required);
        if (!p)
            return {};
        if (!valid_json_pointer(*p))
            s.error(k, "not a JSON pointer: " + in_quotes(*p) +
                           " (\"\" for the whole document, or /field/sub, '~' only as ~0 or ~1)");
        return *p;
    };
    auto url = [&](std::string_view k, bool required) -> std::string {
        auto u = s.string(k, required);
        if (!u)
            return {};
        std::string why;
        if (!parse_http_url(*u, true, &why))
            s.error(k, why);
        return *u;
    };
    out.body_version_pointer = pointer("body_version_pointer", false);
    // The version probe is how "auto" learns the local version; without "auto" it is unused.
    out.version_probe_url = url("version_probe_url", member_version_auto_);
    out.version_probe_pointer =
        pointer("version_probe_pointer", s.node("version_probe_url") != nullptr);
    // The leader probe is the only way a generic sidecar learns that its peer leads (§5).
    out.leader_probe_url = url("leader_probe_url", true);
    out.leader_probe_pointer = pointer("leader_probe_pointer", true);
    if (auto e = s.string("leader_probe_expected", true)) {
        if (e->empty())
            s.error("leader_probe_expected", "must not be empty");
        out.leader_probe_expected = *e;
    }
    cfg_.profile = std::move(out);
}

void Loader::load_admin(const Section& root) {
    Section s = root.table("admin");
    if (auto hp = s.listen_address("listen", false)) {
        cfg_.admin.listen = *hp;
        listens_.push_back({"admin.listen", *hp, s.line_of("listen")});
    } else if (!s.node("listen")) {
        listens_.push_back({"admin.listen", cfg_.admin.listen, 0});
    }
}

void Loader::load_log(const Section& root) {
    Section s = root.table("log");
    if (auto f =
            s.choice<LogFormat>("format", {{"json", LogFormat::json}, {"text", LogFormat::text}}))
        cfg_.log.format = *f;
    if (auto l = s.choice<LogLevel>("level", {{"debug", LogLevel::debug},
                                              {"info", LogLevel::info},
                                              {"warn", LogLevel::warn},
                                              {"error", LogLevel::error}}))
        cfg_.log.level = *l;
}

void Loader::load_limits(const Section& root) {
    Section s = root.table("limits");
    Limits& out = cfg_.limits;
    auto bytes = [&](std::string_view k, std::size_t& field) {
        auto n = s.integer(k);
        if (!n)
            return;
        if (*n < 1024 || *n > 1024 * 1024)
            s.error(k, "must be between 1024 and 1048576 bytes (1 KiB..1 MiB), got " +
                           std::to_string(*n));
        else
            field = static_cast<std::size_t>(*n);
    };
    bytes("max_header_bytes", out.max_header_bytes);
    bytes("max_uri_bytes", out.max_uri_bytes);
    auto timeout = [&](std::string_view k, Duration& field) {
        if (auto d = s.duration(k, false))
            field = *d;
    };
    timeout("handshake_timeout", out.handshake_timeout);
    timeout("header_timeout", out.header_timeout);
    timeout("connect_timeout", out.connect_timeout);
    timeout("idle_timeout", out.idle_timeout);
    timeout("drain_timeout", out.drain_timeout);
    if (auto n = s.integer("max_connections")) {
        if (*n < 1)
            s.error("max_connections", "must be 1 or more, got " + std::to_string(*n));
        else
            out.max_connections = static_cast<std::size_t>(*n);
    }
}

// Two listeners on one address fail at bind time with a less helpful message; the local
// peer's own port cannot be one of ours either. Port 0 (pick any) never collides.
void Loader::check_listens() {
    for (std::size_t j = 0; j < listens_.size(); ++j) {
        for (std::size_t i = 0; i < j; ++i) {
            const Listen& a = listens_[i];
            const Listen& b = listens_[j];
            if (!overlapping(a.addr, b.addr))
                continue;
            // Report at the one written in the file (the admin default has no line).
            const Listen& at = b.line > 0 ? b : a;
            const Listen& other = b.line > 0 ? a : b;
            error(at.line, at.key,
                  at.addr.text() + " is also " + other.key +
                      (other.line > 0 ? "" : " (its default)") +
                      "; every listener needs its own address");
        }
    }
    if (member_peer_line_ > 0 && !cfg_.member.peer.text.empty()) {
        for (const Listen& l : listens_) {
            if (overlapping(l.addr, cfg_.member.peer.authority))
                error(member_peer_line_, "member.peer",
                      cfg_.member.peer.authority.text() + " is also joingate's " + l.key +
                          "; the local peer must listen on a port of its own");
        }
    }
}

LoadResult load(std::string_view text, const std::string& file, Clock::time_point now) {
    try {
        return Loader(file, now).run(text);
    } catch (const std::exception& e) {
        // Only allocation failures can get here; the contract is never to throw.
        LoadResult r;
        r.errors.push_back({file, 0, "", std::string("internal error: ") + e.what()});
        return r;
    }
}

} // namespace

LoadResult load_string(std::string_view toml, const std::string& file,
                       std::chrono::system_clock::time_point now) {
    return load(toml, file, now);
}

LoadResult load_string(std::string_view toml, const std::string& file) {
    return load(toml, file, Clock::now());
}

LoadResult load_file(const std::string& path, std::chrono::system_clock::time_point now) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        LoadResult r;
        r.errors.push_back({path, 0, "", "cannot read: is a directory"});
        return r;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        LoadResult r;
        r.errors.push_back({path, 0, "", std::string("cannot read: ") + std::strerror(errno)});
        return r;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        LoadResult r;
        r.errors.push_back({path, 0, "", std::string("cannot read: ") + std::strerror(errno)});
        return r;
    }
    return load(text.str(), path, now);
}

LoadResult load_file(const std::string& path) {
    return load_file(path, Clock::now());
}

} // namespace joingate::config
