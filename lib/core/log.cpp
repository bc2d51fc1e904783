#include "tmsplan/log.hpp"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace tmsplan::log {
namespace {
Level g_level = Level::Normal;
std::string g_tool = "tmsplan";
std::mutex g_mutex;
void emit(const char* kind, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s: %s%s\n", g_tool.c_str(), kind, message.c_str());
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
void set_tool(const std::string& tool_name) { g_tool = tool_name; }
void warn(const std::string& message) {
  if (g_level >= Level::Normal) emit("warning: ", message);
}
void info(const std::string& message) {
  // Like progress: on a terminal, or with --verbose; quiet in pipelines and logs otherwise.
  static const bool tty = isatty(STDERR_FILENO) != 0;
  if (g_level == Level::Verbose || (g_level == Level::Normal && tty)) emit("", message);
}
void debug(const std::string& message) {
  if (g_level >= Level::Verbose) emit("", message);
}

}  // namespace tmsplan::log
