// Internals of the Jinja interpreter (jinja.h): Python-like values, tokens, the syntax tree, and the declarations
// shared by its files: jinja_lexer.cpp and jinja_parser.cpp (source -> tree), jinja_value.cpp (Python semantics of
// values: str(), repr(), ==, <, +, getattr), jinja_text.cpp (Python's str algorithms, %-formatting),
// jinja_json.cpp (json.dumps), jinja_filters.cpp (filters and tests), jinja_methods.cpp (str / list / dict methods,
// globals) and jinja.cpp (the renderer).
// Values follow Python's data model as jinja2 exposes it: None, bool, int (int64 here), float, str (UTF-8, indexed by
// code point), list / tuple / dict views / range, dict (insertion-ordered), jinja2's Undefined, and objects
// (namespace(), loop, macros, functions, bound methods, one-pass iterators such as map()'s generator).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "palign/base/error.h"

namespace palign::runtime::jinja {

// ---------------------------------------------------------------------------------------------------------------
// Failures. Helpers that do not know the template line throw Failure; the renderer adds the line of the innermost
// node and turns it into palign::Error (kRuntime and kRaised -> kInvalidArgument, kUnsupported -> kUnsupported).
enum class FailureKind { kRuntime, kUnsupported, kRaised };

struct Failure {
  FailureKind kind;
  std::string message;
};

[[noreturn]] void fail(std::string message);              // what jinja2 raises at render time (TypeError, ...)
[[noreturn]] void fail_unsupported(std::string message);  // outside palign's subset

// ---------------------------------------------------------------------------------------------------------------
// Values.
class Value;
class Object;
class Interpreter;

struct UndefinedValue {
  std::shared_ptr<const std::string> message;  // jinja2's UndefinedError text when the value is used; null: generic
};
struct NoneValue {};

struct ListData {
  enum class Kind { kList, kTuple, kRange, kDictKeys, kDictValues, kDictItems };
  std::vector<Value> items;
  Kind kind = Kind::kList;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // kRange: for repr "range(0, 3)"
};

struct DictData {
  std::vector<std::pair<Value, Value>> items;  // insertion order, unique keys
  // The value stored under key (Python hash equality: 1 == 1.0 == True), or nullptr. Throws for an unhashable key.
  const Value* find(const Value& key) const;
  void set(Value key, Value value);
};

using ListPtr = std::shared_ptr<const ListData>;
using DictPtr = std::shared_ptr<const DictData>;
using ObjectPtr = std::shared_ptr<Object>;

class Value {
 public:
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject };

  Value() : data_(UndefinedValue{}) {}
  static Value undefined(std::string message);
  static Value none() { return Value(NoneValue{}); }
  static Value boolean(bool b) { return Value(b); }
  static Value integer(int64_t i) { return Value(i); }
  static Value number(double d) { return Value(d); }
  static Value string(std::string s) { return Value(std::move(s)); }
  // markupsafe.Markup (what the safe and escape filters return): + and % escape plain-string operands.
  static Value markup(std::string s) {
    Value v(std::move(s));
    v.markup_ = true;
    return v;
  }
  static Value list(std::vector<Value> items, ListData::Kind kind = ListData::Kind::kList);
  static Value list(ListPtr list) { return Value(std::move(list)); }
  static Value dict(DictData data);
  static Value object(ObjectPtr object) { return Value(std::move(object)); }

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_undefined() const { return type() == Type::kUndefined; }
  bool is_none() const { return type() == Type::kNone; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_float() const { return type() == Type::kFloat; }
  bool is_string() const { return type() == Type::kString; }
  bool is_markup() const { return markup_; }
  bool is_list() const { return type() == Type::kList; }
  bool is_dict() const { return type() == Type::kDict; }
  bool is_object() const { return type() == Type::kObject; }
  // int or bool (Python's bool is an int subclass).
  bool is_integral() const { return is_int() || is_bool(); }
  bool is_number() const { return is_int() || is_bool() || is_float(); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return is_bool() ? static_cast<int64_t>(as_bool()) : std::get<int64_t>(data_); }
  double as_double() const { return is_float() ? std::get<double>(data_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const ListData& as_list() const { return *std::get<ListPtr>(data_); }
  const ListPtr& list_ptr() const { return std::get<ListPtr>(data_); }
  const DictData& as_dict() const { return *std::get<DictPtr>(data_); }
  const ObjectPtr& as_object() const { return std::get<ObjectPtr>(data_); }
  // The UndefinedError message for an undefined value.
  std::string undefined_message() const;
  // True for a list/tuple (not a range or dict view).
  bool is_sequence_kind(ListData::Kind kind) const { return is_list() && as_list().kind == kind; }

 private:
  using Data = std::variant<UndefinedValue, NoneValue, bool, int64_t, double, std::string, ListPtr, DictPtr, ObjectPtr>;
  explicit Value(Data data) : data_(std::move(data)) {}
  Data data_;
  bool markup_ = false;
};

// Call arguments: positional, then keyword (in call order).
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Binds Args to a Python-style signature (names in order, all optional unless required) for a builtin; what names
// the builtin in messages ("filter 'tojson'"). Unknown or duplicate keywords and surplus positionals fail like Python.
class ArgBinder {
 public:
  ArgBinder(const Args& args, std::string what, std::vector<std::string_view> names, size_t required = 0);
  bool has(size_t index) const { return bound_[index].has_value(); }
  Value get(size_t index, Value fallback = Value()) const;

 private:
  std::vector<std::optional<Value>> bound_;
};

// Namespaces, loops, macros, functions, bound methods, iterators.
class Object {
 public:
  virtual ~Object() = default;
  // Python's type name in messages ("Namespace", "LoopContext", "generator"), and object_type_repr's form for
  // UndefinedError texts ("jinja2.utils.Namespace object").
  virtual std::string type_name() const = 0;
  virtual std::string object_type_repr() const { return type_name() + " object"; }
  // str(); objects whose repr holds a memory address fail (kUnsupported): jinja2's output would not be reproducible.
  virtual std::string str() const;
  // getattr(obj, name) as jinja2's sandbox sees it; undefined when absent.
  virtual Value attr(const std::string& name) const;
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interp, Args args);
  // One-pass iterators (generators, reversed()): the next item, or nullopt when exhausted.
  virtual bool is_iterator() const { return false; }
  virtual std::optional<Value> next() { return std::nullopt; }
};

// A one-pass iterator over precomputed items, as Python's generators and reverse iterators behave: iterating it
// consumes it, it has no len(), it is always truthy, and printing it is unsupported.
class IteratorObject : public Object {
 public:
  IteratorObject(std::string type_name, std::vector<Value> items)
      : type_name_(std::move(type_name)), items_(std::move(items)) {}
  std::string type_name() const override { return type_name_; }
  bool is_iterator() const override { return true; }
  std::optional<Value> next() override;

 private:
  std::string type_name_;
  std::vector<Value> items_;
  size_t pos_ = 0;
};

Value make_iterator(std::string type_name, std::vector<Value> items);

// namespace(): the one mutable value; {% set ns.attr = ... %} assigns to it.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string object_type_repr() const override { return "jinja2.utils.Namespace object"; }
  std::string str() const override;
  Value attr(const std::string& name) const override;
  void set(const std::string& name, Value value);

 private:
  DictData attrs_;
};

// ---------------------------------------------------------------------------------------------------------------
// Python semantics of values (jinja_value.cpp).
std::string type_name(const Value& v);         // Python's type(v).__name__: "str", "NoneType", "dict", ...
std::string object_type_repr(const Value& v);  // jinja2.utils.object_type_repr: "dict object", "None"
bool truthy(const Value& v);
std::string to_str(const Value& v);   // str(v); undefined -> ""
std::string to_repr(const Value& v);  // repr(v)
std::string repr_string(std::string_view s);
std::string float_repr(double d);  // Python's repr(float): 1.0, 1e+16, 0.0001, 1e-05
bool equal(const Value& a, const Value& b);
// a < b as Python orders numbers, strings and sequences; fails for other types (op names the operator).
bool less(const Value& a, const Value& b, std::string_view op = "<");
bool contains(const Value& container, const Value& item);              // item in container
Value binary_op(std::string_view op, const Value& a, const Value& b);  // + - * / // % **
Value negate(const Value& v);
// The items a for loop (or list()) sees: list/tuple items, dict keys, str code points; undefined: none. Consumes
// an iterator. Fails for a non-iterable.
std::vector<Value> iterate(const Value& v);
// len(v); fails for values without one.
int64_t length(const Value& v);
// getattr / getitem as jinja2's SandboxedEnvironment does them (attribute first or item first), undefined when
// missing; fails when obj is undefined.
Value get_attr(const Value& obj, const std::string& name);
// Python's getattr alone (no item fallback), as the attr filter does it.
Value get_python_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// json.dumps(v, ensure_ascii=..., indent=..., separators=..., sort_keys=...) as transformers' tojson filter.
struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // None: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& options);
Value from_json(const void* ordered_json);  // nlohmann::ordered_json*; kept opaque to spare this header the include
// printf-style "fmt % args" on strings.
// escape_args: the format is Markup, so %s and %r arguments are HTML-escaped (markupsafe's _MarkupEscapeHelper).
std::string percent_format(const std::string& format, const Value& args, bool escape_args = false);
std::string html_escape(std::string_view s);  // markupsafe.escape: & < > " '
Value escape_value(const Value& v);           // markupsafe.escape(v): Markup stays as it is

// Python's str algorithms over UTF-8 (jinja_text.cpp).
std::string require_str(const Value& v, const std::string& what);  // fails unless v is a str
int64_t require_int(const Value& v, const std::string& what);      // fails unless v is an int (or bool)
bool is_cased(char32_t cp);                                        // categories Lu Ll Lt
bool is_cased_upper(char32_t cp);
bool is_cased_lower(char32_t cp);
std::string python_capitalize(const std::string& s);
std::string python_title(const std::string& s);  // str.title()
std::string python_swapcase(const std::string& s);
std::vector<std::string> python_splitlines(const std::string& s, bool keepends);
std::string python_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count);
// str.ljust (align -1), center (0) or rjust (1) to width code points with the one-character fill.
std::string python_pad(const std::string& s, int64_t width, const std::string& fill, int align);

// Code point helpers over UTF-8 strings.
std::vector<char32_t> code_points(std::string_view s);
std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end);
bool is_python_space(char32_t cp);  // str.isspace()
std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::string python_upper(std::string_view s);
std::string python_lower(std::string_view s);
std::string python_title_char(char32_t cp);  // the title-case form of one character (may be several)

// ---------------------------------------------------------------------------------------------------------------
// Builtins: filters and tests (jinja_filters.cpp), resolved by name when the template is parsed; methods and
// globals (jinja_methods.cpp).
using FilterFn = Value (*)(Interpreter& interp, const Value& value, const Args& args);
using TestFn = bool (*)(Interpreter& interp, const Value& value, const Args& args);
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// obj.name(args) for str, list and dict methods; fails (kUnsupported) for a Python method palign lacks.
Value call_method(Interpreter& interp, const Value& obj, const std::string& name, const Args& args);
// Whether name is a method of obj's Python type, and whether calling it would mutate obj (which the immutable
// sandbox forbids).
bool is_method(const Value& obj, const std::string& name, bool* mutating);
// The globals: range, dict, namespace, joiner, raise_exception, strftime_now (when given), ...
std::optional<Value> find_global(Interpreter& interp, const std::string& name);

// ---------------------------------------------------------------------------------------------------------------
// Tokens (jinja_lexer.cpp) for the parser (jinja_parser.cpp).
enum class Tok { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInteger, kFloat, kOp, kEof };

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // data, name, unescaped string value, operator
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

// The tokens of template text whose newlines are already normalised to \n; throws kInvalidArgument for a syntax
// error (an unterminated string, comment or raw block, an unexpected character) and kUnsupported for what palign
// does not lex (non-ASCII identifiers, \N{...} escapes), each naming the line.
std::vector<Token> lex(std::string source);
[[noreturn]] void syntax_error(int line, const std::string& message);    // kInvalidArgument, "line N: syntax error"
[[noreturn]] void unsupported_at(int line, const std::string& message);  // kUnsupported, "line N: ..."

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree (built by jinja_parser.cpp).
struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // children: items
  kTuple,    // children: items
  kDict,     // children: key0, value0, key1, value1, ...
  kAttr,     // children[0].name
  kItem,     // children[0][children[1]]
  kSlice,    // children[0][children[1]:children[2]:children[3]] (null children: omitted)
  kCall,     // children[0](children[1:], kwargs)
  kFilter,   // children[0] | name(children[1:], kwargs); children[0] null in {% filter %} / {% set x | f %}
  kTest,     // children[0] is name(children[1:], kwargs)
  kNeg,      // -children[0]
  kPos,      // +children[0]
  kNot,      // not children[0]
  kAnd,      // children[0] and children[1]
  kOr,       // children[0] or children[1]
  kBinary,   // children[0] op children[1]; op in + - * / // % **
  kConcat,   // children joined by ~
  kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ...
  kCond,     // children[0] if children[1] else children[2] (children[2] may be null)
  kNsRef,    // name.attr as a {% set %} target
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;  // kName, kAttr, kFilter, kTest, kNsRef (the namespace variable), kBinary (the operator)
  std::string attr;  // kNsRef
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr star_args;             // f(*x)
  ExprPtr star_kwargs;           // f(**x)
  std::vector<std::string> ops;  // kCompare: eq ne lt lteq gt gteq in notin
  FilterFn filter = nullptr;     // kFilter
  TestFn test = nullptr;         // kTest
};

struct MacroDef {
  std::string name;
  int line = 0;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // exprs: conditions; bodies: one per condition, then the else body
  kFor,          // target in value [if condition]: bodies[0]; else: bodies[1]
  kSet,          // target = value
  kSetBlock,     // {% set target [| filter] %}bodies[0]{% endset %}
  kMacro,        // macro
  kCallBlock,    // {% call(macro's params) value %}macro's body{% endcall %}
  kFilterBlock,  // {% filter filter %}bodies[0]{% endfilter %}
  kWith,         // {% with targets = exprs %}bodies[0]{% endwith %}
  kGeneration,   // {% generation %}bodies[0]{% endgeneration %}
  kBreak,
  kContinue,
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;
  ExprPtr target, value, condition, filter;
  std::vector<ExprPtr> exprs;
  std::vector<ExprPtr> targets;
  std::vector<Body> bodies;
  bool has_else = false;
  std::shared_ptr<const MacroDef> macro;
};

struct Program {
  Body body;
};

std::shared_ptr<const Program> parse_program(std::string_view source);

// ---------------------------------------------------------------------------------------------------------------
// The renderer's state, as builtins and objects see it (jinja.cpp).
class Interpreter {
 public:
  virtual ~Interpreter() = default;
  // Calls a macro, function or bound method; fails for an undefined or non-callable value.
  virtual Value call(const Value& callee, Args args) = 0;
  // RenderOptions::strftime_now (may be empty).
  virtual const std::function<std::string(const std::string&)>& strftime_now() const = 0;
};

}  // namespace palign::runtime::jinja
