// minipt's view of a TOML document: TOML 1.0, parsed by toml++ (header-only), flattened
// into one map from dotted key to value.
//
// A document becomes one flat map: `[model]` followed by `layers = 4` (or
// `model = {layers = 4}`, or `model.layers = 4`) is stored as "model.layers". Each part of
// a dotted key is written bare when it can be ([A-Za-z0-9_-]+) and as a quoted TOML string
// otherwise, so `"a.b".c = 1` is stored as "\"a.b\".c" and the flat key is itself a valid
// TOML key. Tables inside arrays (arrays of tables, inline tables in arrays) stay values of
// type table. Syntax errors throw ConfigError with an empty key and the message
// "<source>:<line>:<column>: <what is wrong>".
//
// Limits that keep hostile input from exhausting memory or the stack: a file is read up
// to kMaxFileBytes; values nest at most 256 deep (toml++'s TOML_MAX_NESTED_VALUES); a
// line holds at most kMaxKeyDots dots between key parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/input_file.hpp"

namespace minipt::toml {

// The largest configuration file read (bigger ones are a ConfigError naming the file).
inline constexpr size_t kMaxFileBytes = kMaxInputFileBytes;
// Dotted key parts (or table header parts) on one line, at most: deeper keys are a
// ConfigError, not a stack overflow in toml++.
inline constexpr int kMaxKeyDots = 128;

struct Value {
  // datetime: a TOML date, time or date-time, kept as its TOML text in `s`.
  // table: only inside arrays; `keys[k]` is the (flattened, dotted) key of `items[k]`.
  enum class Type { string, integer, floating, boolean, array, datetime, table };

  Type type = Type::string;
  std::string s;                  // Type::string, Type::datetime
  int64_t i = 0;                  // Type::integer
  double f = 0.0;                 // Type::floating
  bool b = false;                 // Type::boolean
  std::vector<Value> items;       // Type::array (any types, nested arrays), Type::table
  std::vector<std::string> keys;  // Type::table
  // Where the value was written, for error messages: the line where the value starts
  // (each array item its own) and the file name. Values from parse_value() have line 0
  // and source "--set"; values made in code have line 0 and an empty source.
  int line = 0;
  std::string source;

  static Value of_string(std::string text);
  static Value of_integer(int64_t number);
  static Value of_float(double number);
  static Value of_bool(bool flag);
  static Value of_array(std::vector<Value> elements);

  // "string", "integer", "float", "boolean", "array", "datetime" or "table".
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

// Reads (at most kMaxFileBytes) and parses a file; the file name is the source in error
// messages. A missing, unreadable or oversized file throws
// ConfigError("", "<path>: cannot read configuration file (<reason>)") or
// ConfigError("", "<path>: configuration file is larger than 16 MiB").
Table parse_file(const std::string& path);

// Parses the value half of a `--set key=value` override: TOML value syntax, with one
// convenience: text that is not a valid TOML value is taken as a string, so
// `--set run.mode=odc` and `--set run.out=./x.h5` work without shell-quoted quotes. Text
// that starts with a quote, '[' or '{' must be valid TOML. Inline tables are refused (set
// their keys one by one). Errors throw ConfigError(key, ...).
Value parse_value(std::string_view text, const std::string& key);

// The table as a TOML document: root keys first, then one [header] per table, tables and
// keys in sorted order. parse(format_table(t)) gives t back. Throws ConfigError for a
// table that TOML cannot express (a key that is neither bare nor quoted, a key that is
// both a value and a table, a table value outside an array).
std::string format_table(const Table& table);

}  // namespace minipt::toml
