// Recursive-descent parser for minipt's TOML subset (see toml.hpp for what is supported).
// One Parser walks the text once, tracking the line number for error messages, and
// records which tables exist and how they were opened, so that the redefinition rules of
// TOML 1.0 can be enforced on the flattened key map.
#include "config/toml.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>

namespace minipt::toml {

namespace {

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Characters that can make up an unquoted value: numbers, booleans, inf/nan, and
// (so that they are reported as unsupported rather than as garbage) dates and times.
bool is_token_char(char c) { return is_bare_key_char(c) || c == '+' || c == '.' || c == ':'; }

bool is_control_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

// Arrays hold one type, except that integers and floats may be mixed (both are numbers
// to the config layer). Returns an error text, or nothing when `item` may follow `first`.
std::optional<std::string> array_item_error(const Value& first, const Value& item) {
  if (item.type == Value::Type::array) return std::string("nested arrays are not supported");
  const auto is_number = [](const Value& v) {
    return v.type == Value::Type::integer || v.type == Value::Type::floating;
  };
  if (item.type == first.type || (is_number(item) && is_number(first))) return std::nullopt;
  return "an array must hold values of one type; found " + item.type_name() + " after " +
         first.type_name();
}

void append_utf8(std::string& out, uint32_t code_point) {
  const auto byte = [](uint32_t bits) {
    return static_cast<char>(static_cast<unsigned char>(bits));
  };
  if (code_point < 0x80) {
    out += byte(code_point);
  } else if (code_point < 0x800) {
    out += byte(0xC0 | (code_point >> 6));
    out += byte(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += byte(0xE0 | (code_point >> 12));
    out += byte(0x80 | ((code_point >> 6) & 0x3F));
    out += byte(0x80 | (code_point & 0x3F));
  } else {
    out += byte(0xF0 | (code_point >> 18));
    out += byte(0x80 | ((code_point >> 12) & 0x3F));
    out += byte(0x80 | ((code_point >> 6) & 0x3F));
    out += byte(0x80 | (code_point & 0x3F));
  }
}

std::string quote_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (is_control_char(c)) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04X",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string join_key(const std::string& table, const std::string& part) {
  return table.empty() ? part : table + "." + part;
}

std::string join_parts(const std::vector<std::string>& parts) {
  std::string joined;
  for (const auto& part : parts) joined = join_key(joined, part);
  return joined;
}

// How a table came to exist. TOML 1.0 lets a table be opened once by a [header], or be
// created by dotted keys inside one section; a table that only exists because a deeper
// header named it ([a.b] creates a) may still get its own header later.
enum class TableOrigin { header, dotted_key, implied_by_header };

struct TableRecord {
  TableOrigin origin;
  int line;
};

class Parser {
 public:
  Parser(std::string_view text, std::string source) : text_(text), source_(std::move(source)) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // UTF-8 byte order mark
  }

  Table parse_document() {
    while (!at_end()) {
      skip_blanks();
      if (at_end()) break;
      if (at_line_end()) {
        consume_newline();
      } else if (peek() == '#') {
        skip_comment();
      } else if (peek() == '[') {
        parse_header();
      } else {
        parse_key_value();
      }
    }
    return std::move(values_);
  }

  // The whole text must be one value, surrounded by nothing but whitespace.
  Value parse_lone_value() {
    skip_whitespace_and_newlines();
    Value value = parse_value();
    skip_whitespace_and_newlines();
    if (!at_end()) fail("unexpected text after value: '" + rest_of_line() + "'");
    return value;
  }

  // Errors carry "<source>:<line>: " unless the caller turns them into something else.
  [[noreturn]] void fail(const std::string& what) const { fail_at(line_, what); }
  [[noreturn]] void fail_at(int line, const std::string& what) const {
    throw ConfigError("", source_ + ":" + std::to_string(line) + ": " + what);
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool at_line_end() const {
    return at_end() || peek() == '\n' || (peek() == '\r' && peek(1) == '\n');
  }
  void consume_newline() {
    if (at_end()) return;
    pos_ += peek() == '\r' ? 2 : 1;
    ++line_;
  }
  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  void skip_comment() {
    while (!at_line_end()) ++pos_;
  }
  // Inside arrays (and around a lone value) newlines and comments are whitespace.
  void skip_whitespace_and_newlines() {
    for (;;) {
      skip_blanks();
      if (at_end()) return;
      if (peek() == '#') {
        skip_comment();
      } else if (at_line_end()) {
        consume_newline();
      } else {
        return;
      }
    }
  }

  std::string rest_of_line() const {
    size_t end = pos_;
    while (end < text_.size() && text_[end] != '\n' && text_[end] != '\r') ++end;
    std::string rest(text_.substr(pos_, end - pos_));
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.pop_back();
    return rest.size() > 40 ? rest.substr(0, 40) + "..." : rest;
  }

  std::string describe_here() const {
    if (at_end()) return "end of file";
    if (at_line_end()) return "end of line";
    return "'" + std::string(1, peek()) + "'";
  }

  // After a header or a key-value pair: optional blanks and comment, then a newline.
  void finish_line(const char* after_what) {
    skip_blanks();
    if (peek() == '#') skip_comment();
    if (!at_line_end())
      fail("unexpected text after " + std::string(after_what) + ": '" + rest_of_line() + "'");
    consume_newline();
  }

  std::string parse_key_part() {
    const size_t start = pos_;
    while (!at_end() && is_bare_key_char(peek())) ++pos_;
    if (pos_ > start) return std::string(text_.substr(start, pos_ - start));
    if (peek() == '"' || peek() == '\'')
      fail("quoted keys are not supported; use bare keys [A-Za-z0-9_-]");
    if (peek() == '=') fail("missing key before '='");
    fail("expected a key, found " + describe_here());
  }

  std::vector<std::string> parse_key() {
    std::vector<std::string> parts{parse_key_part()};
    for (;;) {
      const size_t before_blanks = pos_;
      skip_blanks();
      if (peek() != '.') {
        pos_ = before_blanks;
        return parts;
      }
      ++pos_;
      skip_blanks();
      parts.push_back(parse_key_part());
    }
  }

  // A value must not sit where a table is needed.
  void check_not_a_value(const std::string& table, const std::string& needed_by) const {
    const auto found = values_.find(table);
    if (found == values_.end()) return;
    fail(table + " is a value (line " + std::to_string(found->second.line) +
         "), so it cannot also be a table (" + needed_by + ")");
  }

  void parse_header() {
    const int line = line_;
    ++pos_;  // '['
    if (peek() == '[') fail("arrays of tables ([[...]]) are not supported");
    skip_blanks();
    const std::vector<std::string> parts = parse_key();
    skip_blanks();
    if (peek() != ']') fail("expected ']' to close the table header, found " + describe_here());
    ++pos_;
    const std::string name = join_parts(parts);
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix = join_key(prefix, parts[i]);
      check_not_a_value(prefix, "[" + name + "]");
      tables_.try_emplace(prefix, TableRecord{TableOrigin::implied_by_header, line});
    }
    check_not_a_value(name, "[" + name + "]");
    const auto [record, inserted] =
        tables_.try_emplace(name, TableRecord{TableOrigin::header, line});
    if (!inserted) {
      switch (record->second.origin) {
        case TableOrigin::header:
          fail("table [" + name + "] defined twice (lines " + std::to_string(record->second.line) +
               " and " + std::to_string(line) + ")");
        case TableOrigin::dotted_key:
          fail("table [" + name + "] was already defined by dotted keys (line " +
               std::to_string(record->second.line) + ")");
        case TableOrigin::implied_by_header:
          record->second = TableRecord{TableOrigin::header, line};
          break;
      }
    }
    current_table_ = name;
    finish_line("table header");
  }

  void parse_key_value() {
    const int line = line_;
    const std::vector<std::string> parts = parse_key();
    skip_blanks();
    if (peek() != '=') {
      fail("expected '=' after key '" + join_parts(parts) + "', found " + describe_here());
    }
    ++pos_;
    skip_blanks();
    if (at_line_end() || peek() == '#') fail("missing value after '" + join_parts(parts) + " ='");
    Value value = parse_value();
    value.line = line;
    define(parts, std::move(value), line);
    finish_line("value");
  }

  void define(const std::vector<std::string>& parts, Value value, int line) {
    std::string key = current_table_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      key = join_key(key, parts[i]);
      check_not_a_value(key, join_key(current_table_, join_parts(parts)));
      const auto [record, inserted] =
          tables_.try_emplace(key, TableRecord{TableOrigin::dotted_key, line});
      if (!inserted && record->second.origin != TableOrigin::dotted_key) {
        fail("dotted key " + join_parts(parts) + " cannot add to table [" + key +
             "], which was opened by a table header (line " + std::to_string(record->second.line) +
             "); put the key under that header");
      }
    }
    key = join_key(key, parts.back());
    if (const auto found = values_.find(key); found != values_.end()) {
      fail(key + " defined twice (lines " + std::to_string(found->second.line) + " and " +
           std::to_string(line) + ")");
    }
    if (const auto found = tables_.find(key); found != tables_.end()) {
      fail(key + " is a table (line " + std::to_string(found->second.line) +
           "), so it cannot also be a value");
    }
    values_.emplace(std::move(key), std::move(value));
  }

  Value make(Value::Type type) const {
    Value value;
    value.type = type;
    value.line = line_;
    value.source = source_;
    return value;
  }

  Value parse_value() {
    switch (peek()) {
      case '"':
        return parse_basic_string();
      case '\'':
        return parse_literal_string();
      case '[':
        return parse_array();
      case '{':
        fail("inline tables are not supported; use a [table] header");
      default:
        return parse_unquoted();
    }
  }

  Value parse_basic_string() {
    if (peek(1) == '"' && peek(2) == '"') fail("multi-line strings (\"\"\") are not supported");
    Value value = make(Value::Type::string);
    ++pos_;
    for (;;) {
      if (at_line_end()) fail("unterminated string (missing closing \")");
      const char c = text_[pos_++];
      if (c == '"') return value;
      if (c == '\\') {
        value.s += parse_escape();
      } else if (is_control_char(c)) {
        fail("control character in string (write it as an escape such as \\n or \\t)");
      } else {
        value.s += c;
      }
    }
  }

  std::string parse_escape() {
    if (at_line_end()) fail("unterminated string (missing closing \")");
    const char c = text_[pos_++];
    switch (c) {
      case '"':
        return "\"";
      case '\\':
        return "\\";
      case 'b':
        return "\b";
      case 't':
        return "\t";
      case 'n':
        return "\n";
      case 'f':
        return "\f";
      case 'r':
        return "\r";
      case 'u':
        return parse_unicode_escape(4);
      case 'U':
        return parse_unicode_escape(8);
      default:
        fail("unknown escape sequence '\\" + std::string(1, c) + "' in string");
    }
  }

  std::string parse_unicode_escape(size_t hex_digits) {
    const std::string_view digits = text_.substr(pos_, hex_digits);
    uint32_t code_point = 0;
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), code_point, 16);
    if (digits.size() != hex_digits || error != std::errc() ||
        end != digits.data() + digits.size()) {
      fail("\\" + std::string(hex_digits == 4 ? "u" : "U") + " must be followed by " +
           std::to_string(hex_digits) + " hexadecimal digits");
    }
    if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      fail("\\" + std::string(digits) + " is not a Unicode scalar value");
    }
    pos_ += hex_digits;
    std::string utf8;
    append_utf8(utf8, code_point);
    return utf8;
  }

  Value parse_literal_string() {
    if (peek(1) == '\'' && peek(2) == '\'') fail("multi-line strings (''') are not supported");
    Value value = make(Value::Type::string);
    ++pos_;
    for (;;) {
      if (at_line_end()) fail("unterminated string (missing closing ')");
      const char c = text_[pos_++];
      if (c == '\'') return value;
      if (is_control_char(c)) fail("control character in string");
      value.s += c;
    }
  }

  Value parse_array() {
    Value array = make(Value::Type::array);
    const int open_line = line_;
    ++pos_;  // '['
    for (;;) {
      skip_whitespace_and_newlines();
      if (at_end()) fail_at(open_line, "unterminated array (missing ']')");
      if (peek() == ']') break;
      if (peek() == ',') fail("expected a value in the array, found ','");
      Value item = parse_value();
      if (!array.items.empty()) {
        if (auto error = array_item_error(array.items.front(), item)) fail(*error);
      } else if (item.type == Value::Type::array) {
        fail("nested arrays are not supported");
      }
      array.items.push_back(std::move(item));
      skip_whitespace_and_newlines();
      if (at_end()) fail_at(open_line, "unterminated array (missing ']')");
      if (peek() == ']') break;
      if (peek() != ',') fail("expected ',' or ']' in the array, found " + describe_here());
      ++pos_;
    }
    ++pos_;  // ']'
    return array;
  }

  // Booleans, numbers, inf and nan: everything unquoted.
  Value parse_unquoted() {
    const size_t start = pos_;
    while (!at_end() && is_token_char(peek())) ++pos_;
    const std::string token(text_.substr(start, pos_ - start));
    if (token.empty()) fail("expected a value, found " + describe_here());
    if (token == "true" || token == "false") {
      Value value = make(Value::Type::boolean);
      value.b = token == "true";
      return value;
    }
    const char first = token[0];
    if (!is_digit(first) && first != '+' && first != '-' && first != '.' && token != "inf" &&
        token != "nan") {
      fail("bad value '" + token + "': strings must be quoted (\"" + token + "\")");
    }
    return parse_number(token);
  }

  Value parse_number(const std::string& token) {
    const bool has_sign = token[0] == '+' || token[0] == '-';
    const std::string_view unsigned_part = std::string_view(token).substr(has_sign ? 1 : 0);
    if (unsigned_part == "inf" || unsigned_part == "nan") {
      Value value = make(Value::Type::floating);
      const double magnitude = unsigned_part == "inf" ? HUGE_VAL : std::nan("");
      value.f = token[0] == '-' ? -magnitude : magnitude;
      return value;
    }
    const auto bad = [&](const std::string& why) {
      fail("bad number '" + token + "'" + (why.empty() ? "" : ": " + why));
    };
    if (token.find(':') != std::string::npos ||
        (token.size() >= 5 && is_digit(token[0]) && is_digit(token[3]) && token[4] == '-')) {
      fail("dates and times are not supported ('" + token + "')");
    }
    if (unsigned_part.size() >= 2 && unsigned_part[0] == '0' &&
        (unsigned_part[1] == 'x' || unsigned_part[1] == 'o' || unsigned_part[1] == 'b')) {
      bad("hexadecimal, octal and binary integers are not supported");
    }

    // TOML numbers: digits may be grouped by single underscores between digits; the
    // integer part has no leading zeros; a float has a fraction, an exponent or both.
    std::string cleaned = token[0] == '-' ? "-" : "";
    size_t p = 0;
    const auto read_digits = [&](const char* what) -> size_t {
      size_t count = 0;
      while (p < unsigned_part.size()) {
        const char c = unsigned_part[p];
        if (is_digit(c)) {
          cleaned += c;
          ++count;
        } else if (c == '_') {
          if (count == 0 || p + 1 >= unsigned_part.size() || !is_digit(unsigned_part[p + 1])) {
            bad("'_' must stand between digits");
          }
        } else {
          break;
        }
        ++p;
      }
      if (count == 0) bad(std::string("expected digits") + what);
      return count;
    };
    const size_t integer_digits = read_digits("");
    if (integer_digits > 1 && unsigned_part[0] == '0') bad("leading zeros are not allowed");
    bool is_float = false;
    if (p < unsigned_part.size() && unsigned_part[p] == '.') {
      cleaned += '.';
      ++p;
      read_digits(" after '.'");
      is_float = true;
    }
    if (p < unsigned_part.size() && (unsigned_part[p] == 'e' || unsigned_part[p] == 'E')) {
      cleaned += 'e';
      ++p;
      if (p < unsigned_part.size() && (unsigned_part[p] == '+' || unsigned_part[p] == '-')) {
        cleaned += unsigned_part[p++];
      }
      read_digits(" in the exponent");
      is_float = true;
    }
    if (p != unsigned_part.size()) bad("");

    const char* begin = cleaned.data();
    const char* end = cleaned.data() + cleaned.size();
    if (is_float) {
      Value value = make(Value::Type::floating);
      const auto [stop, error] = std::from_chars(begin, end, value.f);
      if (error == std::errc::result_out_of_range) bad("out of the range of a 64-bit float");
      if (error != std::errc() || stop != end) bad("");
      return value;
    }
    Value value = make(Value::Type::integer);
    const auto [stop, error] = std::from_chars(begin, end, value.i);
    if (error == std::errc::result_out_of_range) bad("out of the range of a 64-bit integer");
    if (error != std::errc() || stop != end) bad("");
    return value;
  }

  std::string_view text_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
  Table values_;
  std::map<std::string, TableRecord> tables_;
  std::string current_table_;  // "" is the root table
};

}  // namespace

Value Value::of_string(std::string text) {
  Value value;
  value.type = Type::string;
  value.s = std::move(text);
  return value;
}

Value Value::of_integer(int64_t number) {
  Value value;
  value.type = Type::integer;
  value.i = number;
  return value;
}

Value Value::of_float(double number) {
  Value value;
  value.type = Type::floating;
  value.f = number;
  return value;
}

Value Value::of_bool(bool flag) {
  Value value;
  value.type = Type::boolean;
  value.b = flag;
  return value;
}

Value Value::of_array(std::vector<Value> elements) {
  Value value;
  value.type = Type::array;
  value.items = std::move(elements);
  return value;
}

std::string Value::type_name() const {
  switch (type) {
    case Type::string:
      return "string";
    case Type::integer:
      return "integer";
    case Type::floating:
      return "float";
    case Type::boolean:
      return "boolean";
    case Type::array:
      return "array";
  }
  return "unknown";
}

std::string Value::to_toml() const {
  switch (type) {
    case Type::string:
      return quote_string(s);
    case Type::integer:
      return std::to_string(i);
    case Type::floating: {
      if (std::isnan(f)) return std::signbit(f) ? "-nan" : "nan";
      if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
      // Shortest text that reads back as the same double. It may come out as "3" or
      // "1e+20"; TOML needs a '.' or an exponent to read a float, so add ".0" if neither.
      char buffer[64];
      const auto result = std::to_chars(buffer, buffer + sizeof buffer, f);
      std::string text(buffer, result.ptr);
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      return text;
    }
    case Type::boolean:
      return b ? "true" : "false";
    case Type::array: {
      std::string text = "[";
      for (size_t k = 0; k < items.size(); ++k) {
        if (k > 0) text += ", ";
        text += items[k].to_toml();
      }
      return text + "]";
    }
  }
  return "";
}

bool Value::same_value(const Value& other) const {
  if (type != other.type) return false;
  switch (type) {
    case Type::string:
      return s == other.s;
    case Type::integer:
      return i == other.i;
    case Type::floating:
      if (std::isnan(f) || std::isnan(other.f)) return std::isnan(f) && std::isnan(other.f);
      return f == other.f && std::signbit(f) == std::signbit(other.f);
    case Type::boolean:
      return b == other.b;
    case Type::array:
      if (items.size() != other.items.size()) return false;
      for (size_t k = 0; k < items.size(); ++k) {
        if (!items[k].same_value(other.items[k])) return false;
      }
      return true;
  }
  return false;
}

Table parse(std::string_view text, const std::string& source_name) {
  return Parser(text, source_name).parse_document();
}

Table parse_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw ConfigError("", path + ": cannot read configuration file (" + std::strerror(errno) + ")");
  }
  std::string text;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;  // e.g. EISDIR: fopen of a directory succeeds, fread fails
  std::fclose(file);
  if (failed) {
    throw ConfigError(
        "", path + ": cannot read configuration file (" + std::strerror(read_errno) + ")");
  }
  return parse(text, path);
}

Value parse_value(std::string_view text, const std::string& key) {
  size_t first = 0;
  size_t last = text.size();
  while (first < last && (text[first] == ' ' || text[first] == '\t')) ++first;
  while (last > first && (text[last - 1] == ' ' || text[last - 1] == '\t')) --last;
  const std::string_view trimmed = text.substr(first, last - first);
  if (trimmed.empty()) throw ConfigError(key, "empty value (write \"\" for an empty string)");

  // Text that starts like a TOML value must be valid TOML; anything else that is not a
  // keyword is a bare string.
  const char c = trimmed[0];
  const bool looks_like_toml = c == '"' || c == '\'' || c == '[' || c == '{' || is_digit(c) ||
                               c == '+' || c == '-' || c == '.' || trimmed == "true" ||
                               trimmed == "false" || trimmed == "inf" || trimmed == "nan";
  Value value;
  if (looks_like_toml) {
    try {
      value = Parser(trimmed, "--set").parse_lone_value();
    } catch (const ConfigError& error) {
      // Replace the "<source>:<line>: " prefix: the key names the place well enough.
      std::string message = error.what();
      const size_t prefix_end = message.find(": ");
      if (prefix_end != std::string::npos) message = message.substr(prefix_end + 2);
      throw ConfigError(key, message + " (in value '" + std::string(trimmed) + "')");
    }
  } else {
    value = Value::of_string(std::string(trimmed));
  }
  value.line = 0;
  value.source = "--set";
  return value;
}

namespace {

void check_writable_key(const std::string& key) {
  if (key.empty()) throw ConfigError(key, "an empty key cannot be written as TOML");
  size_t part_start = 0;
  for (size_t k = 0; k <= key.size(); ++k) {
    if (k == key.size() || key[k] == '.') {
      if (k == part_start)
        throw ConfigError(key, "key has an empty part and cannot be written as TOML");
      part_start = k + 1;
    } else if (!is_bare_key_char(key[k])) {
      throw ConfigError(key, "key is not a bare TOML key ([A-Za-z0-9_-] parts joined by '.')");
    }
  }
}

}  // namespace

std::string format_table(const Table& table) {
  // Group keys by the table they belong to (everything before the last dot).
  std::map<std::string, std::vector<std::pair<std::string, const Value*>>> tables;
  for (const auto& [key, value] : table) {
    check_writable_key(key);
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
      if (table.count(key.substr(0, dot)) > 0) {
        throw ConfigError(key.substr(0, dot), "is a value and also a table (" + key + ")");
      }
    }
    if (value.type == Value::Type::array && !value.items.empty()) {
      for (const Value& item : value.items) {
        if (auto error = array_item_error(value.items.front(), item))
          throw ConfigError(key, *error);
      }
    }
    const size_t last_dot = key.rfind('.');
    const std::string table_name = last_dot == std::string::npos ? "" : key.substr(0, last_dot);
    tables[table_name].emplace_back(key.substr(last_dot + 1), &value);
  }

  std::string text;
  for (const auto& [table_name, entries] : tables) {
    if (!table_name.empty()) {
      if (!text.empty()) text += "\n";
      text += "[" + table_name + "]\n";
    }
    for (const auto& [leaf, value] : entries) text += leaf + " = " + value->to_toml() + "\n";
  }
  return text;
}

}  // namespace minipt::toml
