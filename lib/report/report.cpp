// The report page: one self-contained HTML file (inline CSS with a print stylesheet, pictures as
// base64 data URIs, nothing fetched from anywhere).
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <unistd.h>

#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/qc.hpp"
#include "tmsplan/report.hpp"
#include "tmsplan/text.hpp"
#include "tmsplan/version.hpp"

namespace tmsplan::report {

namespace fs = std::filesystem;

std::string html_escape(const std::string& text) { return escape_markup(text, "'"); }

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (unsigned(std::uint8_t(bytes[i])) << 16) | (unsigned(std::uint8_t(bytes[i + 1])) << 8) |
                       unsigned(std::uint8_t(bytes[i + 2]));
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = unsigned(std::uint8_t(bytes[i])) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (unsigned(std::uint8_t(bytes[i])) << 16) | (unsigned(std::uint8_t(bytes[i + 1])) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string figure_png(const QcFigure& figure) {
  // QcFigure only writes files: go through a private temporary folder.
  std::string templ = (fs::temp_directory_path() / "tmsplan-fig.XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw Error("cannot create a temporary folder for a figure", templ);
  const std::string path = templ + "/figure.png";
  std::string bytes;
  try {
    figure.write_png(path, true);
    bytes = read_file(path);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(templ, ec);
    throw;
  }
  std::error_code ec;
  fs::remove_all(templ, ec);
  return bytes;
}

namespace {

const char* kCss = R"css(
:root { --ok:#1b7f3a; --okbg:#e3f4e8; --warn:#8a5a00; --warnbg:#fff3d6; --bad:#b00020; --badbg:#fde4e7; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color:#1d1d1f; margin:0 auto;
       max-width:1160px; padding:18px 24px 40px; font-size:14px; line-height:1.4; background:#fff; }
h1 { font-size:24px; margin:4px 0 2px; }
h2 { font-size:19px; border-bottom:2px solid #334; padding-bottom:3px; margin:28px 0 10px; }
h3 { font-size:16px; margin:18px 0 6px; }
.sub { color:#555; margin:0 0 10px; }
table { border-collapse:collapse; margin:6px 0 10px; width:100%; }
th, td { border:1px solid #c8c8d0; padding:4px 7px; text-align:left; vertical-align:top; }
th { background:#eef0f5; }
td.mono, .mono { font-family:"DejaVu Sans Mono", monospace; font-size:12.5px; word-break:break-all; }
.kv td:first-child { width:24%; font-weight:bold; background:#f7f8fa; }
.coords td:first-child { width:22%; } .coords td:nth-child(3) { width:24%; }
.convention { background:#eef4ff; border-left:4px solid #3861c8; padding:6px 10px; margin:10px 0; }
.warnings { background:var(--warnbg); border-left:4px solid #d89a00; padding:6px 12px; margin:10px 0; }
.warnings li { margin:2px 0; }
.checks { background:var(--warnbg); border:2px solid #d89a00; border-radius:4px; padding:8px 14px; margin:12px 0; }
.checks h2 { border:none; margin:0 0 4px; font-size:17px; color:var(--warn); }
.checks li { margin:3px 0; }
.guideline { background:#eef4ff; border-left:4px solid #3861c8; padding:6px 10px; margin:8px 0; }
.sources td:first-child { width:42%; } .sources td:nth-child(2) { width:22%; }
.verdict { display:flex; gap:10px; align-items:flex-start; padding:6px 10px; margin:5px 0; border-radius:4px; }
.badge { font-weight:bold; padding:2px 8px; border-radius:3px; color:#fff; white-space:nowrap; }
.tone-ok { background:var(--okbg); } .tone-ok .badge { background:var(--ok); }
.tone-warn { background:var(--warnbg); } .tone-warn .badge { background:#c07a00; }
.tone-bad { background:var(--badbg); } .tone-bad .badge { background:var(--bad); }
.tone-neutral { background:#f0f0f3; } .tone-neutral .badge { background:#666; }
figure { margin:8px 0 14px; }
figure img { max-width:100%; height:auto; border:1px solid #999; display:block; }
figcaption { color:#444; font-size:12.5px; margin-top:3px; }
.pictures { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
.pictures figure.wide { flex:1 1 100%; }
.pictures figure.square { flex:1 1 300px; max-width:540px; }
.target { page-break-inside:auto; }
.note { color:#444; font-size:13px; }
footer { margin-top:30px; color:#666; font-size:12px; border-top:1px solid #ccc; padding-top:6px; }
@media print {
  body { max-width:none; padding:0; font-size:10.5pt; }
  h2 { page-break-after:avoid; }
  figure, table, .verdict { page-break-inside:avoid; }
  section.target { page-break-before:always; }
  .pictures figure.square { flex:1 1 45%; max-width:none; }
  .checks { page-break-inside:avoid; }
  a { color:inherit; text-decoration:none; }
  @page { size:A4; margin:14mm; }
}
)css";

std::string tone_class(Tone t) {
  switch (t) {
  case Tone::ok:
    return "tone-ok";
  case Tone::warn:
    return "tone-warn";
  case Tone::bad:
    return "tone-bad";
  default:
    return "tone-neutral";
  }
}

std::string table_html(const Table& t, const std::string& cls = "", const std::vector<bool>& mono = {}) {
  std::string out = cls.empty() ? "<table>\n" : "<table class=\"" + cls + "\">\n";
  if (!t.header.empty()) {
    out += "<tr>";
    for (const auto& h : t.header) out += "<th>" + html_escape(h) + "</th>";
    out += "</tr>\n";
  }
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool m = c < mono.size() && mono[c];
      out += (m ? "<td class=\"mono\">" : "<td>") + html_escape(row[c]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string picture_html(const Picture& p, const std::string& cls) {
  if (p.png.size() < 8 || p.png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    throw Error("report: picture '" + p.title + "' is not a PNG");
  return "<figure class=\"" + cls + "\"><img alt=\"" + html_escape(p.title) + "\" src=\"data:image/png;base64," +
         base64(p.png) + "\"><figcaption><b>" + html_escape(p.title) + ".</b> " + html_escape(p.caption) +
         "</figcaption></figure>\n";
}

std::string list_html(const std::vector<std::string>& items, const std::string& cls) {
  if (items.empty()) return {};
  std::string out = "<ul class=\"" + cls + "\">\n";
  for (const auto& s : items) out += "<li>" + html_escape(s) + "</li>\n";
  return out + "</ul>\n";
}

std::string verdict_html(const Verdict& v) {
  return "<div class=\"verdict " + tone_class(v.tone) + "\"><span class=\"badge\">" + html_escape(v.verdict) +
         "</span><span><b>" + html_escape(v.label) + "</b>: " + html_escape(v.message) + "</span></div>\n";
}

}  // namespace

std::string render_html(const ReportData& data) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>" + html_escape(data.title) + "</title>\n<style>" + std::string(kCss) + "</style>\n</head>\n<body>\n";
  h += "<header><h1>" + html_escape(data.title) + "</h1>\n";
  h += "<p class=\"sub\">Generated " + html_escape(data.generated_utc) + " by tmsplan " + html_escape(kVersion) +
       " (protocol-export). A planning aid: the clinician checks every value before treatment.</p></header>\n";

  // The single box of what the clinician must still check, first on the page.
  if (!data.checks.empty() || !data.warnings.empty()) {
    std::vector<std::string> items = data.checks;
    items.insert(items.end(), data.warnings.begin(), data.warnings.end());
    h += "<section id=\"checks\" class=\"checks\"><h2>Before treatment, check</h2>\n" + list_html(items, "") +
         "<p class=\"note\">Every citation and its checked status: <a href=\"#sources\">Sources</a>.</p></section>\n";
  }

  h += "<section id=\"summary\"><h2>Patient and scan</h2>\n" + table_html(data.summary, "kv", {false, true});
  h += "<p class=\"convention\"><b>Coordinates.</b> " + html_escape(data.coordinate_convention) + "</p>\n";
  h += "</section>\n";

  h += "<section id=\"protocol\"><h2>Protocol and safety</h2>\n" + table_html(data.protocol, "kv");
  h += "<h3>Safety: single-train duration and inter-train interval</h3>\n";
  for (const auto& v : data.safety) h += verdict_html(v);
  h += list_html(data.safety_notes, "note");
  h += "</section>\n";

  h += "<section id=\"dose\"><h2>Dose</h2>\n";
  for (const auto& v : data.dose_verdicts) h += verdict_html(v);
  if (!data.dose.rows.empty()) h += table_html(data.dose);
  h += list_html(data.dose_notes, "note");
  h += "</section>\n";

  for (const auto& t : data.targets) {
    h += "<section class=\"target\" id=\"target-" + html_escape(t.name) + "\"><h2>Target " + html_escape(t.name) +
         "</h2>\n";
    if (!t.description.empty()) h += "<p>" + html_escape(t.description) + "</p>\n";
    if (!t.guideline.empty())
      h += "<p class=\"guideline\"><b>Guideline at this target.</b> " + html_escape(t.guideline) + "</p>\n";
    h += table_html(t.coordinates, "coords", {false, true, true});
    if (!t.efield.rows.empty()) {
      h += "<h3>Induced electric field</h3>\n" + table_html(t.efield, "coords", {false, true, true, true});
      for (const auto& n : t.efield_notes) h += "<p class=\"note\">" + html_escape(n) + "</p>\n";
    }
    if (!t.warnings.empty()) h += "<div class=\"warnings\"><b>Warnings</b>\n" + list_html(t.warnings, "") + "</div>\n";
    h += "<div class=\"pictures\">\n";
    for (std::size_t i = 0; i < t.pictures.size(); ++i) h += picture_html(t.pictures[i], i == 0 ? "wide" : "square");
    h += "</div>\n</section>\n";
  }

  h += "<section id=\"qc\"><h2>Quality control of the earlier steps</h2>\n";
  if (data.earlier_qc.empty()) h += "<p class=\"note\">No QC pictures of earlier steps were found.</p>\n";
  for (const auto& p : data.earlier_qc) h += picture_html(p, "wide");
  h += "</section>\n";

  h += "<section id=\"sources\"><h2>Sources</h2>\n" + table_html(data.sources, "sources");
  h += list_html(data.sources_notes, "note") + "</section>\n";

  h += "<section id=\"files\"><h2>Plan files</h2>\n" + table_html(data.files, "", {true, false, true}) + "</section>\n";

  h += "<section id=\"provenance\"><h2>Provenance</h2>\n";
  for (const auto& p : data.provenance) {
    h += "<h3>" + html_escape(p.tool) + " " + html_escape(p.version) + "</h3>\n";
    Table meta;
    meta.rows.push_back({"record", p.source});
    if (!p.finished.empty()) meta.rows.push_back({"finished (UTC)", p.finished});
    meta.rows.push_back({"command line", p.command_line});
    h += table_html(meta, "kv", {false, true});
    if (!p.inputs.rows.empty()) h += table_html(p.inputs, "", {false, true, true});
  }
  h += "</section>\n";
  h += "<footer>tmsplan " + html_escape(kVersion) + " &middot; " + html_escape(data.coordinate_convention) +
       "</footer>\n</body>\n</html>\n";
  return h;
}

}  // namespace tmsplan::report
