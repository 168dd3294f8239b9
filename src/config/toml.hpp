// A small, strict parser for the subset of TOML that minipt's input files use, so that
// the program needs no third-party TOML library.
//
// Supported: comments, [table] and [a.b] headers, `key = value`, dotted keys, bare keys
// ([A-Za-z0-9_-]+), basic strings with escapes, literal strings, integers, floats
// (including inf and nan), booleans, and arrays of scalars (multi-line, trailing comma).
// Everything accepted means what TOML 1.0 says it means. Not supported, and rejected with
// a message that says so: inline tables, arrays of tables, quoted keys, multi-line
// strings, nested arrays, hexadecimal/octal/binary integers, dates and times.
//
// A document becomes one flat map from dotted key to value: `[model]` followed by
// `layers = 4` is stored as "model.layers". Syntax errors throw ConfigError with an empty
// key and the message "<source>:<line>: <what is wrong>".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.hpp"

namespace minipt::toml {

struct Value {
  enum class Type { string, integer, floating, boolean, array };

  Type type = Type::string;
  std::string s;             // Type::string
  int64_t i = 0;             // Type::integer
  double f = 0.0;            // Type::floating
  bool b = false;            // Type::boolean
  std::vector<Value> items;  // Type::array: scalars; integers and floats may be mixed
  // Where the value was written, for error messages: the line of its key (of the item
  // itself for array items) and the file name. Values from parse_value() have line 0
  // and source "--set"; values made in code have line 0 and an empty source.
  int line = 0;
  std::string source;

  static Value of_string(std::string text);
  static Value of_integer(int64_t number);
  static Value of_float(double number);
  static Value of_bool(bool flag);
  static Value of_array(std::vector<Value> elements);

  // "string", "integer", "float", "boolean" or "array".
  std::string type_name() const;
  // The value in TOML syntax; parse_value(to_toml()) gives the same value back
  // (floats are written in the shortest form that reads back bit-exact).
  std::string to_toml() const;
  // Same type and contents; line and source are ignored, and NaN equals NaN so that a
  // round trip can be checked with it.
  bool same_value(const Value& other) const;
};

// Dotted key ("model.layers") → value.
using Table = std::map<std::string, Value>;

Table parse(std::string_view text, const std::string& source_name);

// Reads and parses a file; the file name is the source in error messages. A missing or
// unreadable file throws ConfigError("", "<path>: cannot read configuration file (<reason>)").
Table parse_file(const std::string& path);

// Parses the value half of a `--set key=value` override. TOML value syntax, with one
// convenience: text that does not start like a TOML value (quote, bracket, digit or
// sign) and is not true/false/inf/nan is taken as a string, so `--set run.mode=odc`
// works without shell-quoted quotes. Errors throw ConfigError(key, ...).
Value parse_value(std::string_view text, const std::string& key);

// The table as a TOML document: root keys first, then one [header] per table, tables and
// keys in sorted order. parse(format_table(t)) gives t back. Throws ConfigError for a
// table that TOML cannot express (a key that is not bare, a key that is both a value and
// a table, nested or mixed-type arrays).
std::string format_table(const Table& table);

}  // namespace minipt::toml
