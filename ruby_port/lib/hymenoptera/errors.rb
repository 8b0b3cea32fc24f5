# frozen_string_literal: true

require "json"

module Hymenoptera
  # A problem the user can fix: a missing file, a corrupt image, a wrong option.
  class UserError < StandardError; end

  # Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2.
  module Errors
    EXIT_USER_ERROR = 2

    module_function

    def one_line(message)
      message.to_s.split.join(" ")
    end

    # JSON.parse of a file the user gave or generated; missing or malformed, it is a UserError that
    # names it (label, default the path), says what is wrong and ends in how to fix it.
    def read_json(path, fix:, label: path, missing: "not found")
      JSON.parse(File.read(path))
    rescue Errno::ENOENT, Errno::EISDIR
      raise UserError, "#{label} #{missing}; #{fix}"
    rescue JSON::ParserError => e
      raise UserError, "#{label} is not valid JSON (#{one_line(e.message)}); #{fix}"
    end

    # What counts as the user's problem: ours, a broken tensor bundle, a bad thread setting, and what
    # the system reports about a file (not found, no permission, disk full) with its path.
    def user_errors
      [
        UserError, SystemCallError,
        (TensorIO::BundleError if defined?(TensorIO::BundleError)),
        (Threads::SettingError if defined?(Threads::SettingError))
      ].compact
    end

    # Runs a command-line entry point; a user's problem becomes one line and exit 2, never a backtrace.
    def run_cli(program = File.basename($PROGRAM_NAME))
      yield
    rescue *user_errors => e
      warn "#{program}: error: #{one_line(e.message)}"
      exit EXIT_USER_ERROR
    rescue Interrupt
      warn "#{program}: interrupted"
      exit 130
    end
  end
end
