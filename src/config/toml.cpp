// minipt's TOML layer over toml++: parse a document with toml++, flatten its tree into
// the dotted-key Table, and write a Table back as TOML (format_table). The parsing itself
// is all toml++'s; this file adds the limits (file size, key depth), the `--set` value
// rules and the conversion to and from minipt's Value.
#include "config/toml.hpp"

#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#endif
#ifndef TOML_EXCEPTIONS
#define TOML_EXCEPTIONS 1
#endif
#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <utility>
#include <variant>

namespace minipt::toml {

namespace {

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_control_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

std::string quote_string(std::string_view text) {
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

// One part of a flat key: bare when TOML allows it, else a quoted string.
std::string key_part(std::string_view part) {
  bool bare = !part.empty();
  for (const char c : part) bare = bare && is_bare_key_char(c);
  return bare ? std::string(part) : quote_string(part);
}

std::string join_key(const std::string& table, const std::string& part) {
  return table.empty() ? part : table + "." + part;
}

[[noreturn]] void fail_at(const std::string& source, uint64_t line, uint64_t column,
                          const std::string& what) {
  throw ConfigError(
      "", source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
}

// toml++ bounds how deep values nest (arrays, inline tables: TOML_MAX_NESTED_VALUES), but
// not how many parts a dotted key or table header has, and a key of 100000 parts
// overflows the stack. Keys and headers never span lines, so counting the dots on each
// line (outside strings and comments, and not the one dot of a number or time such as
// 2.5 or 07:32:00.5) bounds the depth of every table.
struct SyntaxError {
  uint64_t line = 0, column = 0;
  std::string what;
};

std::optional<SyntaxError> key_depth_error(std::string_view text) {
  const size_t n = text.size();
  size_t i = 0;
  size_t line_start = 0;
  uint64_t line = 1;
  int dots = 0;
  const auto newline_at = [&](size_t at) {
    ++line;
    line_start = at + 1;
    dots = 0;
  };
  const auto is_token_char = [](char c) {
    return is_bare_key_char(c) || c == '.' || c == '+' || c == ':';
  };
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      newline_at(i++);
    } else if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      const bool basic = c == '"';
      const std::string_view fence = basic ? "\"\"\"" : "'''";
      if (text.substr(i, 3) == fence) {  // multi-line string
        i += 3;
        while (i < n && text.substr(i, 3) != fence) {
          if (text[i] == '\n') newline_at(i);
          if (basic && text[i] == '\\' && i + 1 < n) {
            if (text[i + 1] == '\n') newline_at(i + 1);
            ++i;
          }
          ++i;
        }
        i += 3;
        for (int extra = 0; extra < 2 && i < n && text[i] == c; ++extra) ++i;
      } else {
        ++i;
        while (i < n && text[i] != c && text[i] != '\n') {
          if (basic && text[i] == '\\' && i + 1 < n && text[i + 1] != '\n') ++i;
          ++i;
        }
        if (i < n && text[i] == c) ++i;
      }
    } else if (is_token_char(c)) {
      const size_t start = i;
      int token_dots = 0;
      size_t dot = 0;
      for (; i < n && is_token_char(text[i]); ++i) {
        if (text[i] == '.') ++token_dots, dot = i;
      }
      const bool number_dot = token_dots == 1 && dot > start && dot + 1 < i &&
                              is_digit(text[dot - 1]) && is_digit(text[dot + 1]);
      if (!number_dot) dots += token_dots;
      if (dots > kMaxKeyDots)
        return SyntaxError{line, start - line_start + 1,
                           "a dotted key or table header nests more than " +
                               std::to_string(kMaxKeyDots) + " tables deep"};
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

// The document, or the first syntax error in it.
std::variant<::toml::table, SyntaxError> try_parse(std::string_view text,
                                                   const std::string& source) {
  if (auto error = key_depth_error(text)) return *error;
  try {
    return ::toml::parse(text, std::string_view(source));
  } catch (const ::toml::parse_error& error) {
    return SyntaxError{error.source().begin.line, error.source().begin.column,
                       std::string(error.description())};
  }
}

::toml::table parse_document(std::string_view text, const std::string& source) {
  auto result = try_parse(text, source);
  if (auto* error = std::get_if<SyntaxError>(&result))
    fail_at(source, error->line, error->column, error->what);
  return std::move(std::get<::toml::table>(result));
}

void flatten(const ::toml::table& table, const std::string& prefix, const std::string& source,
             Table& out);

Value convert(const ::toml::node& node, const std::string& source) {
  Value value;
  value.line = static_cast<int>(node.source().begin.line);
  value.source = source;
  std::ostringstream text;
  switch (node.type()) {
    case ::toml::node_type::string:
      value.type = Value::Type::string;
      value.s = node.as_string()->get();
      break;
    case ::toml::node_type::integer:
      value.type = Value::Type::integer;
      value.i = node.as_integer()->get();
      break;
    case ::toml::node_type::floating_point:
      value.type = Value::Type::floating;
      value.f = node.as_floating_point()->get();
      break;
    case ::toml::node_type::boolean:
      value.type = Value::Type::boolean;
      value.b = node.as_boolean()->get();
      break;
    case ::toml::node_type::date:
      text << node.as_date()->get();
      value.type = Value::Type::datetime;
      value.s = text.str();
      break;
    case ::toml::node_type::time:
      text << node.as_time()->get();
      value.type = Value::Type::datetime;
      value.s = text.str();
      break;
    case ::toml::node_type::date_time:
      text << node.as_date_time()->get();
      value.type = Value::Type::datetime;
      value.s = text.str();
      break;
    case ::toml::node_type::array:
      value.type = Value::Type::array;
      for (const ::toml::node& item : *node.as_array())
        value.items.push_back(convert(item, source));
      break;
    case ::toml::node_type::table: {
      value.type = Value::Type::table;
      Table inner;
      flatten(*node.as_table(), "", source, inner);
      for (auto& [key, item] : inner) {
        value.keys.push_back(key);
        value.items.push_back(std::move(item));
      }
      break;
    }
    case ::toml::node_type::none:
      fail_at(source, node.source().begin.line, node.source().begin.column, "empty value");
  }
  return value;
}

void flatten(const ::toml::table& table, const std::string& prefix, const std::string& source,
             Table& out) {
  for (const auto& [key, node] : table) {
    const std::string flat = join_key(prefix, key_part(key.str()));
    if (const ::toml::table* sub = node.as_table())
      flatten(*sub, flat, source, out);
    else
      out.emplace(flat, convert(node, source));
  }
}

void mark_as_set(Value& value) {
  value.line = 0;
  value.source = "--set";
  for (Value& item : value.items) mark_as_set(item);
}

// A flat key's parts (each bare or quoted, as key_part writes them).
std::vector<std::string> split_key(const std::string& key) {
  if (key.empty()) throw ConfigError(key, "an empty key cannot be written as TOML");
  const auto not_a_key = [&]() {
    throw ConfigError(key,
                      "key is not a bare TOML key ([A-Za-z0-9_-]) or a quoted one (\"...\"), "
                      "parts joined by '.'");
  };
  std::vector<std::string> parts;
  size_t i = 0;
  for (;;) {
    const size_t start = i;
    if (key[i] == '"') {
      for (++i; i < key.size() && key[i] != '"'; i += key[i] == '\\' ? 2 : 1) {
        if (is_control_char(key[i])) not_a_key();
      }
      if (i >= key.size()) not_a_key();
      ++i;
    } else {
      for (; i < key.size() && key[i] != '.'; ++i) {
        if (!is_bare_key_char(key[i])) not_a_key();
      }
    }
    if (i == start) throw ConfigError(key, "key has an empty part and cannot be written as TOML");
    parts.push_back(key.substr(start, i - start));
    if (i == key.size()) return parts;
    if (key[i] != '.') not_a_key();
    if (++i == key.size())
      throw ConfigError(key, "key has an empty part and cannot be written as TOML");
  }
}

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
    case Type::datetime:
      return "datetime";
    case Type::table:
      return "table";
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
    case Type::datetime:
      return s;
    case Type::array: {
      std::string text = "[";
      for (size_t k = 0; k < items.size(); ++k) {
        if (k > 0) text += ", ";
        text += items[k].to_toml();
      }
      return text + "]";
    }
    case Type::table: {
      std::string text = "{";
      for (size_t k = 0; k < items.size() && k < keys.size(); ++k) {
        text += (k > 0 ? ", " : "") + keys[k] + " = " + items[k].to_toml();
      }
      return text + "}";
    }
  }
  return "";
}

bool Value::same_value(const Value& other) const {
  if (type != other.type) return false;
  switch (type) {
    case Type::string:
    case Type::datetime:
      return s == other.s;
    case Type::integer:
      return i == other.i;
    case Type::floating:
      if (std::isnan(f) || std::isnan(other.f)) return std::isnan(f) && std::isnan(other.f);
      return f == other.f && std::signbit(f) == std::signbit(other.f);
    case Type::boolean:
      return b == other.b;
    case Type::table:
      if (keys != other.keys) return false;
      [[fallthrough]];
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
  const ::toml::table document = parse_document(text, source_name);
  Table out;
  flatten(document, "", source_name, out);
  return out;
}

Table parse_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw ConfigError("", path + ": cannot read configuration file (" + std::strerror(errno) + ")");
  }
  // At most kMaxFileBytes: a huge file or a device such as /dev/zero is an error, not an
  // endless read.
  std::string text;
  char buffer[1 << 16];
  size_t got = 0;
  bool too_big = false;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    if (text.size() + got > kMaxFileBytes) {
      too_big = true;
      break;
    }
    text.append(buffer, got);
  }
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;  // e.g. EISDIR: fopen of a directory succeeds, fread fails
  std::fclose(file);
  if (too_big) {
    throw ConfigError("", path + ": configuration file is larger than " +
                              std::to_string(kMaxFileBytes >> 20) + " MiB (not read further)");
  }
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

  // The text is a TOML value when `v = <text>` is a document holding v and nothing else.
  auto result = try_parse("v = " + std::string(trimmed), "--set");
  const auto* document = std::get_if<::toml::table>(&result);
  const ::toml::node* node = document && document->size() == 1 ? document->get("v") : nullptr;
  if (node == nullptr) {
    // Text that starts like a quoted string, an array or an inline table must be valid
    // TOML; anything else is a bare string.
    const char c = trimmed.front();
    if (c == '"' || c == '\'' || c == '[' || c == '{') {
      const auto* error = std::get_if<SyntaxError>(&result);
      throw ConfigError(key, "not a valid TOML value: " +
                                 (error ? error->what : std::string("text after the value")) +
                                 " (in value '" + std::string(trimmed) + "')");
    }
    Value value = Value::of_string(std::string(trimmed));
    mark_as_set(value);
    return value;
  }
  if (node->is_table()) {
    throw ConfigError(key, "an inline table cannot be set as one value; set its keys one by one (" +
                               key + ".<name>=...)");
  }
  Value value = convert(*node, "--set");
  mark_as_set(value);
  return value;
}

std::string format_table(const Table& table) {
  // Group keys by the table they belong to (every part but the last).
  std::map<std::string, std::vector<std::pair<std::string, const Value*>>> tables;
  for (const auto& [key, value] : table) {
    const std::vector<std::string> parts = split_key(key);
    std::string table_name;
    for (size_t p = 0; p + 1 < parts.size(); ++p) {
      table_name = join_key(table_name, parts[p]);
      if (table.count(table_name) > 0)
        throw ConfigError(table_name, "is a value and also a table (" + key + ")");
    }
    if (value.type == Value::Type::table)
      throw ConfigError(
          key, "a table value can only stand in an array; write its keys as " + key + ".<name>");
    tables[table_name].emplace_back(parts.back(), &value);
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
