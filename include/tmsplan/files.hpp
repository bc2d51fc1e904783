#pragma once
/// Files: output checks before work starts, atomic writes (temp file in the target folder, then
/// rename), sha256 of inputs.
#include <string>
#include <vector>

namespace tmsplan {

/// Throws Error unless `path` can be created: its folder exists and is writable, and the file
/// does not exist yet (or `force`). Call for every output before computing anything.
void check_output_path(const std::string& path, bool force);

/// Throws Error naming the file when it does not exist or cannot be read.
void check_input_path(const std::string& path);

/// A temporary file beside `target`; commit() renames it over the target. Destroyed without
/// commit (an exception, an early return) it removes the temp file. Temp files are also removed
/// if the process gets SIGINT/SIGTERM (see install_interrupt_cleanup).
class AtomicFile {
 public:
  AtomicFile(std::string target, bool force);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  /// fsyncs the temp file and renames it to the target. Without force, refuses if the target
  /// appeared meanwhile (another run won the race).
  void commit();

 private:
  std::string target_;
  std::string temp_;
  bool force_;
  bool committed_ = false;
  int slot_holder_ = -1;
};

/// Writes bytes to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& bytes, bool force);

/// Reads a whole file; throws Error naming it on failure. Refuses files over max_bytes.
std::string read_file(const std::string& path, std::size_t max_bytes = 256u << 20);

/// Hex sha256 of a file's bytes (of a DICOM directory: of its sorted file names and contents).
std::string sha256_file(const std::string& path);
std::string sha256_bytes(const std::string& bytes);

/// The outputs of one tool run in one folder, named by the pipeline contract (DESIGN.md 8).
/// check() verifies them all before any work starts, so a run never stops half-way because its
/// last output exists.
class OutputSet {
 public:
  OutputSet(std::string dir, bool force);
  /// Registers an output and returns its full path.
  std::string add(const std::string& role, const std::string& file_name);
  void check() const;
  const std::string& path(const std::string& role) const;
  bool force() const { return force_; }
  const std::vector<std::pair<std::string, std::string>>& all() const { return outputs_; }

 private:
  std::string dir_;
  bool force_;
  std::vector<std::pair<std::string, std::string>> outputs_;
};

/// Installs SIGINT/SIGTERM/SIGHUP handlers that unlink live temp files (and the outputs the
/// current run committed, see begin_run_outputs), then re-raise.
void install_interrupt_cleanup();

/// One tool run's outputs: after begin_run_outputs(), every committed AtomicFile target is
/// remembered; discard_run_outputs() (a failure) or an interrupting signal removes them, so a run
/// that does not finish leaves none of its outputs; keep_run_outputs() (success) forgets them.
void begin_run_outputs();
void keep_run_outputs();
void discard_run_outputs();

}  // namespace tmsplan
