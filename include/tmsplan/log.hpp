#pragma once
/// One log to stderr behind one level. stdout is for data only.
#include <fmt/format.h>

#include <string>

namespace tmsplan::log {

enum class Level { Quiet = 0, Normal = 1, Verbose = 2 };

void set_level(Level level);
Level level();
void set_tool(const std::string& tool_name);
/// Warnings are shown unless --quiet.
void warn(const std::string& message);
/// Progress-level information: shown on a terminal (unless --quiet) or with --verbose.
void info(const std::string& message);
/// Detail shown only with --verbose.
void debug(const std::string& message);

}  // namespace tmsplan::log
