#pragma once
// A name-driven navigator reader, as tools that import navigator sessions read them (SimNIBS's
// Localite import takes the file's kind and date from its name: `InstrumentMarker(\d*).xml`, the
// digits parsed as a date): it lists a folder, recognises each file by its name alone, checks the
// name's timestamp is a real date, and parses the file with the reader its name calls for. Written
// independently of tmsplan's own name helpers so that it can catch them out.
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tmsplan/navigators.hpp"

namespace name_reader {

struct Folder {
  std::map<std::string, std::vector<tmsplan::nav::Marker>> instrument_markers;  ///< file name -> markers
  std::map<std::string, std::vector<tmsplan::nav::EntryTarget>> entry_targets;
  std::map<std::string, std::vector<tmsplan::nav::Marker>> brainsight;
  std::map<std::string, std::vector<tmsplan::nav::Marker>> ant;
  std::map<std::string, std::string> stamps;  ///< file name -> "YYYY-MM-DD hh:mm:ss.mmm"
  std::vector<std::string> unrecognised;      ///< names no reader claims
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// "YYYYMMDDhhmmssSSS" -> "YYYY-MM-DD hh:mm:ss.SSS", or empty when it is not a real date and time
/// (std::get_time, then a round trip through mktime to refuse 31 February and the like).
inline std::string parse_stamp(const std::string& digits) {
  if (digits.size() != 17 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return {};
  std::tm tm{};
  std::istringstream in(digits.substr(0, 14));
  in >> std::get_time(&tm, "%Y%m%d%H%M%S");
  if (in.fail()) return {};
  std::tm copy = tm;
  copy.tm_isdst = 0;
  if (std::mktime(&copy) == -1 || copy.tm_mday != tm.tm_mday || copy.tm_mon != tm.tm_mon || copy.tm_hour != tm.tm_hour)
    return {};
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return std::string(buf) + "." + digits.substr(14);
}

/// Reads every file of `dir` that a name-driven reader recognises. Throws (tmsplan::Error from
/// the format readers, std::runtime_error for a bad timestamp) when a recognised file does not parse.
inline Folder read_folder(const std::string& dir) {
  static const std::regex instrument(R"(InstrumentMarker(\d*)\.xml$)"), entry(R"(^EntryTarget(\d*)\.xml$)");
  Folder f;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    const std::string name = p.filename().string();
    std::smatch m;
    if (std::regex_search(name, m, instrument) || std::regex_search(name, m, entry)) {
      const std::string stamp = parse_stamp(m[1].str());
      if (stamp.empty()) throw std::runtime_error(name + ": the name's timestamp '" + m[1].str() + "' is not a date");
      f.stamps[name] = stamp;
      if (name.find("InstrumentMarker") != std::string::npos)
        f.instrument_markers[name] = tmsplan::nav::read_localite_markers(slurp(p), p.string()).markers;
      else
        f.entry_targets[name] = tmsplan::nav::read_localite_entry_targets(slurp(p), p.string());
    } else if (p.extension() == ".mrk") {
      f.ant[name] = tmsplan::nav::read_ant_markers(slurp(p), p.string()).markers;
    } else if (p.extension() == ".txt" && slurp(p).rfind("# Version:", 0) == 0) {
      f.brainsight[name] = tmsplan::nav::read_brainsight_targets(slurp(p), p.string()).targets;
    } else {
      f.unrecognised.push_back(name);
    }
  }
  return f;
}

}  // namespace name_reader
