#pragma once
/// Text for markup files: the one escaping of XML (navigator files) and HTML (the report).
/// Defined in lib/core/text.cpp.
#include <string>
#include <string_view>

namespace tmsplan {

/// Markup-safe text: & < > " always become entities (&amp; &lt; &gt; &quot;), and each character
/// listed in `also` a decimal character reference (' -> &#39;, newline -> &#10;, tab -> &#9;).
std::string escape_markup(const std::string& text, std::string_view also = {});

}  // namespace tmsplan
