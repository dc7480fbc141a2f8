/*
 * Result values used across the pure C++ units: a failure carries a short
 * message in nginx's log voice (lowercase, no full stop, values quoted).
 */

#ifndef NAO_SSO_RESULT_H
#define NAO_SSO_RESULT_H

#include <optional>
#include <string>
#include <utility>

namespace nao {

struct Error {
    std::string message;
};

template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}
    Result(Error error) : error_(std::move(error.message)) {}

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }

    T &value() { return *value_; }
    const T &value() const { return *value_; }
    T *operator->() { return &*value_; }
    const T *operator->() const { return &*value_; }

    const std::string &error() const { return error_; }

private:
    std::optional<T> value_;
    std::string error_;
};

/* a Result without a value */
class Status {
public:
    Status() = default;
    Status(Error error) : failed_(true), error_(std::move(error.message)) {}

    static Status success() { return Status(); }

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const std::string &error() const { return error_; }

private:
    bool failed_ = false;
    std::string error_;
};

inline Error fail(std::string message)
{
    return Error{std::move(message)};
}

}  // namespace nao

#endif
