// Plain tab-separated plan files in the spirit of the draft BIDS TMS extension:
// markers.tsv (one row per target: target and entry points, coil pose) and tms.tsv (protocol per
// target). "n/a" marks an unknown value, as in BIDS.
#include "tmsplan/error.hpp"
#include "tmsplan/navigators.hpp"

#include <fmt/format.h>

#include <array>
#include <type_traits>

namespace tmsplan::nav {

namespace {

constexpr const char* kNa = "n/a";

std::vector<std::string> marker_columns() {
  std::vector<std::string> cols = {"name", "target_x", "target_y", "target_z", "entry_x", "entry_y", "entry_z"};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) cols.push_back(fmt::format("pose_{}{}", r, c));
  }
  return cols;
}

std::string join_row(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += '\t';
    out += fields[i];
  }
  return out + '\n';
}

void append_point(std::vector<std::string>& row, const std::optional<Eigen::Vector3d>& p, const std::string& what) {
  if (!p) {
    row.insert(row.end(), 3, kNa);
    return;
  }
  if (!p->allFinite()) throw Error(fmt::format("cannot write {}: non-finite coordinate", what));
  for (int i = 0; i < 3; ++i) row.push_back(detail::fixed((*p)(i), 6));
}

std::optional<Eigen::Vector3d> read_point(const std::vector<std::string_view>& f, std::size_t first,
                                          const std::string& source, const std::string& what) {
  const int na = (f[first] == kNa) + (f[first + 1] == kNa) + (f[first + 2] == kNa);
  if (na == 3) return std::nullopt;
  if (na != 0) throw Error(what + ": some coordinates are n/a and some are not", source);
  Eigen::Vector3d p;
  for (int i = 0; i < 3; ++i) p(i) = detail::parse_number(f[first + static_cast<std::size_t>(i)], source, what);
  if (p.norm() > 10000.0) throw Error(what + ": point is more than 10 m from the origin", source);
  return p;
}

template <typename T> std::string optional_text(const std::optional<T>& v) {
  if (!v) return kNa;
  if constexpr (std::is_floating_point_v<T>)
    return fmt::format("{:g}", *v);
  else
    return fmt::format("{}", *v);
}

}  // namespace

std::string write_markers_tsv(const std::vector<Marker>& markers) {
  std::vector<std::string> header = marker_columns();
  std::string out = join_row(header);
  for (const Marker& mk : markers) {
    detail::check_tsv_name(mk.name, "markers.tsv");
    if (mk.name == kNa) throw Error("cannot write markers.tsv: a marker is named 'n/a'");
    const Pose pose = detail::pose_for_writing(mk.pose, fmt::format("marker '{}'", mk.name));
    std::vector<std::string> row = {mk.name};
    append_point(row, mk.target, fmt::format("target of '{}'", mk.name));
    append_point(row, mk.entry, fmt::format("entry of '{}'", mk.name));
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) row.push_back(detail::fixed(pose.m(r, c), c == 3 ? 6 : 8));
    }
    out += join_row(row);
  }
  return out;
}

std::vector<Marker> read_markers_tsv(std::string_view text, const std::string& source) {
  const auto lines = detail::split_lines(text);
  if (lines.empty() || lines[0].empty()) throw Error("empty markers.tsv (no header line)", source);
  const std::vector<std::string> expected = marker_columns();
  const auto header = detail::split(lines[0], '\t');
  if (header.size() != expected.size()) {
    throw Error(fmt::format("header has {} columns, expected {} ({} ...)", header.size(), expected.size(), expected[0]),
                source);
  }
  for (std::size_t k = 0; k < expected.size(); ++k) {
    if (header[k] != expected[k]) {
      throw Error(fmt::format("header column {} is '{}', expected '{}'", k + 1, header[k], expected[k]), source);
    }
  }
  std::vector<Marker> out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = detail::split(lines[i], '\t');
    const std::string what = fmt::format("line {}", i + 1);
    if (f.size() != expected.size()) {
      throw Error(fmt::format("{}: {} fields, expected {}", what, f.size(), expected.size()), source);
    }
    Marker mk;
    mk.name = std::string(f[0]);
    mk.target = read_point(f, 1, source, what + " target");
    mk.entry = read_point(f, 4, source, what + " entry");
    Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) {
        m(r, c) = detail::parse_number(f[static_cast<std::size_t>(7 + 4 * r + c)], source,
                                       fmt::format("{} pose_{}{}", what, r, c));
      }
    }
    mk.pose = detail::checked_pose(m, source, what);
    out.push_back(std::move(mk));
  }
  return out;
}

std::string write_tms_tsv(const std::vector<TargetProtocol>& rows) {
  std::string out =
      join_row({"target_name", "protocol_id", "frequency_hz", "intensity_pct_rmt", "pulses_per_train",
                "train_duration_s", "inter_train_interval_s", "trains", "pulses_per_session", "sessions"});
  for (const TargetProtocol& row : rows) {
    const protocol::Protocol& p = row.protocol;
    detail::check_tsv_name(row.target_name, "tms.tsv");
    detail::check_tsv_name(p.id, "tms.tsv");
    out += join_row({row.target_name, p.id, fmt::format("{:g}", p.frequency_hz), optional_text(p.intensity_pct_rmt),
                     optional_text(protocol::pulses_per_train(p)), optional_text(p.train_duration_s),
                     optional_text(p.inter_train_interval_s), optional_text(p.trains),
                     fmt::format("{}", p.pulses_per_session), fmt::format("{}", p.sessions)});
  }
  return out;
}

}  // namespace tmsplan::nav
