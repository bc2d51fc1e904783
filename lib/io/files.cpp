#include "tmsplan/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TMSPLAN_SHA_NI 1
#endif

#include "tmsplan/error.hpp"

namespace fs = std::filesystem;

namespace tmsplan {

// ---- temp-file registry (async-signal-safe cleanup) ---------------------------------------
namespace {
constexpr int kMaxTemps = 64;
constexpr int kPathLen = 4096;
char g_temps[kMaxTemps][kPathLen];
std::atomic<bool> g_used[kMaxTemps];
std::atomic<bool> g_temp_ready[kMaxTemps];  // set once the path is fully copied
// Set first thing by the signal handler: a thread that creates a temp file afterwards removes it
// itself and waits for the end (the handler runs on one thread while the others go on).
std::atomic<bool> g_interrupted{false};

int register_temp(const std::string& path) {
  for (int i = 0; i < kMaxTemps; ++i) {
    bool expected = false;
    if (g_used[i].compare_exchange_strong(expected, true)) {
      std::strncpy(g_temps[i], path.c_str(), kPathLen - 1);
      g_temps[i][kPathLen - 1] = '\0';
      g_temp_ready[i].store(true);
      return i;
    }
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  g_temp_ready[slot].store(false);
  g_used[slot].store(false);
}

// Outputs committed by the current tool run (between begin_run_outputs and keep/discard): a run
// that fails or is interrupted removes them, so it never leaves part of its output set behind.
constexpr int kMaxCommitted = 128;
char g_committed[kMaxCommitted][kPathLen];
std::atomic<bool> g_committed_ready[kMaxCommitted];  // set once the path is fully copied
std::atomic<int> g_committed_count{0};
std::atomic<bool> g_tracking{false};

void register_committed(const std::string& path) {
  if (!g_tracking.load()) return;
  const int slot = g_committed_count.fetch_add(1);
  if (slot >= kMaxCommitted) return;  // more outputs than slots: the rest stay on failure
  std::strncpy(g_committed[slot], path.c_str(), kPathLen - 1);
  g_committed[slot][kPathLen - 1] = '\0';
  g_committed_ready[slot].store(true);
}

void unlink_committed() {
  const int n = std::min(g_committed_count.load(), kMaxCommitted);
  for (int i = 0; i < n; ++i)
    if (g_committed_ready[i].load()) ::unlink(g_committed[i]);
}

void forget_committed() {
  for (auto& ready : g_committed_ready) ready.store(false);
  g_committed_count.store(0);
}

void unlink_temps() {
  for (int i = 0; i < kMaxTemps; ++i)
    if (g_temp_ready[i].load()) ::unlink(g_temps[i]);
}

// Two passes 50 ms apart: a worker thread may be between creating a temp file (or committing an
// output) and registering it when the signal comes; the second pass removes what it registered.
extern "C" void cleanup_and_reraise(int sig) {
  g_interrupted.store(true);
  for (int pass = 0; pass < 2; ++pass) {
    unlink_temps();
    if (g_tracking.load()) unlink_committed();
    if (pass == 0) {
      const struct timespec pause_50ms = {0, 50 * 1000 * 1000};
      ::nanosleep(&pause_50ms, nullptr);
    }
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::string parent_of(const std::string& path) {
  fs::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
}  // namespace

void install_interrupt_cleanup() {
  std::signal(SIGINT, cleanup_and_reraise);
  std::signal(SIGTERM, cleanup_and_reraise);
  std::signal(SIGHUP, cleanup_and_reraise);
}

void begin_run_outputs() {
  g_tracking.store(false);
  forget_committed();
  g_tracking.store(true);
}

void keep_run_outputs() {
  g_tracking.store(false);
  forget_committed();
}

void discard_run_outputs() {
  if (!g_tracking.load()) return;
  g_tracking.store(false);
  unlink_committed();
  forget_committed();
}

void check_input_path(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("input does not exist", path);
  if (::access(path.c_str(), R_OK) != 0) throw Error("input is not readable", path);
}

void check_output_path(const std::string& path, bool force) {
  if (path.empty()) throw Error("empty output path");
  std::error_code ec;
  const std::string dir = parent_of(path);
  if (!fs::is_directory(dir, ec)) throw Error("output folder does not exist", dir);
  if (::access(dir.c_str(), W_OK) != 0) throw Error("output folder is not writable", dir);
  if (fs::is_directory(path, ec)) throw Error("output path is a folder", path);
  if (!force && fs::exists(path, ec)) throw Error("output exists (use --force to overwrite)", path);
}

AtomicFile::AtomicFile(std::string target, bool force) : target_(std::move(target)), force_(force) {
  check_output_path(target_, force_);
  const fs::path t(target_);
  std::random_device rd;
  for (int attempt = 0; attempt < 16; ++attempt) {
    const auto name =
        "." + t.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd() % 1000000);
    temp_ = (t.parent_path().empty() ? fs::path(name) : t.parent_path() / name).string();
    // Registered before it exists, so that an interrupt never misses it.
    slot_holder_ = register_temp(temp_);
    const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
      ::close(fd);
      if (g_interrupted.load()) {  // the handler may have passed: remove it and wait for the end
        ::unlink(temp_.c_str());
        for (;;) ::pause();
      }
      return;
    }
    unregister_temp(slot_holder_);
    slot_holder_ = -1;
  }
  throw Error("cannot create a temporary file beside the output", target_);
}

AtomicFile::~AtomicFile() {
  if (!committed_) ::unlink(temp_.c_str());
  unregister_temp(slot_holder_);
}

void AtomicFile::commit() {
  const int fd = ::open(temp_.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (force_) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
      throw Error("cannot rename the finished output into place", target_);
  } else {
    // link() fails if the target exists: a concurrent run that finished first keeps its file.
    if (::link(temp_.c_str(), target_.c_str()) != 0) {
      if (errno == EEXIST) throw Error("output appeared while this run was working (another run?)", target_);
      if (::rename(temp_.c_str(), target_.c_str()) != 0)
        throw Error("cannot move the finished output into place", target_);
    } else {
      ::unlink(temp_.c_str());
    }
  }
  committed_ = true;
  register_committed(target_);
}

OutputSet::OutputSet(std::string dir, bool force) : dir_(std::move(dir)), force_(force) {
  if (dir_.empty()) throw UsageError("an output folder is needed (--out-dir)");
}

std::string OutputSet::add(const std::string& role, const std::string& file_name) {
  const std::string p = (fs::path(dir_) / file_name).string();
  outputs_.emplace_back(role, p);
  return p;
}

void OutputSet::check() const {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) throw Error("output folder does not exist", dir_);
  for (const auto& [role, p] : outputs_) check_output_path(p, force_);
}

const std::string& OutputSet::path(const std::string& role) const {
  for (const auto& [r, p] : outputs_)
    if (r == role) return p;
  throw Error("internal: no output named " + role);
}

void write_file_atomic(const std::string& path, const std::string& bytes, bool force) {
  AtomicFile file(path, force);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw Error("cannot write (disk full?)", path);
  }
  file.commit();
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  check_input_path(path);
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("expected a file, found a folder", path);
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error("cannot determine the file size", path);
  if (size > max_bytes) throw Error("file is too large (" + std::to_string(size) + " bytes)", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open", path);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in) throw Error("cannot read", path);
  return bytes;
}

// ---- sha256 (FIPS 180-4) --------------------------------------------------------------------
namespace {

constexpr std::uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#ifdef TMSPLAN_SHA_NI
// The x86 SHA extensions (most CPUs since 2017): the same compression function in hardware, about
// five times the speed of the portable code on the volumes the tools hash for their records.
bool have_sha_ni() {
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return ssse3 && sse41 && (b & (1u << 29));
  }();
  return yes;
}

// `blocks` 64-byte blocks into the state h (FIPS 180-4 order a..h).
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(std::uint32_t* h, const unsigned char* data,
                                                                 std::size_t blocks) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);     // CDAB
  __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);  // EFGH
  __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                                        // ABEF
  s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                                             // CDGH
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef = s0, cdgh = s1;
    __m128i w[4];
    for (int g = 0; g < 16; ++g) {  // four rounds per group of four message words
      __m128i& m = w[g & 3];
      if (g < 4) {
        m = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), swap);
      } else {  // w[t] from w[t-16], w[t-15] (msg1), w[t-7] (alignr) and w[t-2] (msg2)
        const __m128i w7 = _mm_alignr_epi8(w[(g - 1) & 3], w[(g - 2) & 3], 4);
        m = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m, w[(g - 3) & 3]), w7), w[(g - 1) & 3]);
      }
      __m128i k = _mm_add_epi32(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kSha256K + 4 * g)));
      s1 = _mm_sha256rnds2_epu32(s1, s0, k);
      k = _mm_shuffle_epi32(k, 0x0E);
      s0 = _mm_sha256rnds2_epu32(s0, s1, k);
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
  }
  tmp = _mm_shuffle_epi32(s0, 0x1B);                                                 // FEBA
  s1 = _mm_shuffle_epi32(s1, 0xB1);                                                  // DCHG
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(tmp, s1, 0xF0));   // DCBA
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(s1, tmp, 8));  // HGFE
}
#endif

class Sha256 {
 public:
  void update(const unsigned char* data, std::size_t n) {
    bits_ += static_cast<std::uint64_t>(n) * 8;
    while (n > 0) {
      if (fill_ == 0 && n >= 64) {  // whole blocks straight from the input
        const std::size_t whole = n / 64;
        compress(data, whole);
        data += 64 * whole;
        n -= 64 * whole;
        continue;
      }
      const std::size_t take = std::min<std::size_t>(64 - fill_, n);
      std::memcpy(block_ + fill_, data, take);
      fill_ += take;
      data += take;
      n -= take;
      if (fill_ == 64) {
        compress(block_, 1);
        fill_ = 0;
      }
    }
  }
  std::string hex() {
    const std::uint64_t bits = bits_;
    const unsigned char pad = 0x80;
    update(&pad, 1);
    const unsigned char zero = 0;
    while (fill_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto word : h_)
      for (int s = 28; s >= 0; s -= 4) out += digits[(word >> s) & 0xf];
    return out;
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress(const unsigned char* data, std::size_t blocks) {
#ifdef TMSPLAN_SHA_NI
    if (have_sha_ni()) {
      compress_sha_ni(h_.data(), data, blocks);
      return;
    }
#endif
    for (std::size_t b = 0; b < blocks; ++b) compress_portable(data + 64 * b);
  }
  void compress_portable(const unsigned char* block) {
    const std::uint32_t* k = kSha256K;
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(block[4 * i]) << 24) | (std::uint32_t(block[4 * i + 1]) << 16) |
             (std::uint32_t(block[4 * i + 2]) << 8) | std::uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }
  std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block_[64]{};
  std::size_t fill_ = 0;
  std::uint64_t bits_ = 0;
};

void hash_stream(Sha256& sha, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read", path);
  std::array<char, 1 << 16> buf;
  while (in) {
    in.read(buf.data(), buf.size());
    sha.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<std::size_t>(in.gcount()));
  }
}
}  // namespace

std::string sha256_bytes(const std::string& bytes) {
  Sha256 sha;
  sha.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return sha.hex();
}

std::string sha256_file(const std::string& path) {
  check_input_path(path);
  Sha256 sha;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(path))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const auto rel = fs::relative(f, path).string();
      sha.update(reinterpret_cast<const unsigned char*>(rel.data()), rel.size() + 1);
      hash_stream(sha, f.string());
    }
  } else {
    hash_stream(sha, path);
  }
  return sha.hex();
}

}  // namespace tmsplan
