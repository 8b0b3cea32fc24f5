# frozen_string_literal: true

require "json"
require "optparse"

module Hymenoptera
  # A problem the user can fix: a missing file, a corrupt image, a wrong option. Modules subclass it
  # for their own (TensorIO::BundleError, Threads::SettingError), so run_cli rescues them all.
  class UserError < StandardError; end

  # Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2.
  module Errors
    EXIT_USER_ERROR = 2
    SEED_MAX = 2**64 - 2 # LibTorch's seeds are unsigned 64-bit, and the val loader's is seed + 1

    module_function

    def one_line(message)
      message.to_s.split.join(" ")
    end

    # A path for a message: bytes that are not UTF-8 as \xNN (Python and Ruby write them alike).
    def display(path)
      path.to_s.dup.force_encoding(Encoding::UTF_8).scrub { |bytes| bytes.unpack("C*").map { |b| format("\\x%02x", b) }.join }
    end

    # JSON's name for the type of a parsed value (the same word on both sides).
    def json_type(value)
      case value
      when Hash then "object"
      when Array then "array"
      when String then "string"
      when true, false then "boolean"
      when nil then "null"
      else "number"
      end
    end

    WORKERS_MAX = 64

    # A whole number of at least 1 (epochs, batch size, step size).
    def check_count(value, option)
      raise UserError, "#{option} #{value}: expected a whole number of at least 1" if value < 1

      value
    end

    # DataLoader worker processes: 0 (load in the main process) to WORKERS_MAX.
    def check_workers(value, option = "--workers")
      unless value.between?(0, WORKERS_MAX)
        raise UserError, "#{option} #{value}: expected a whole number from 0 to #{WORKERS_MAX} " \
                         "(DataLoader worker processes; 0 loads in the main process)"
      end

      value
    end

    # A finite number of at least 0 (learning rates, momentum, gamma).
    def check_rate(value, option)
      raise UserError, "#{option} #{python_float(value)}: expected a finite number of at least 0" unless value.finite? && value >= 0

      value
    end

    def check_seed(value, option = "--seed")
      return value if value.between?(0, SEED_MAX)

      raise UserError, "#{option} #{value}: expected a whole number from 0 to #{SEED_MAX} (LibTorch's seeds are " \
                       "unsigned 64-bit; the val loader uses seed + 1)"
    end

    # One grammar for the numbers of every option on both sides (Python's twins in errors.py): ASCII digits
    # only, no separators ("1__0": Ruby read 10, Python refused), no leading zeros ("010" is octal to
    # Integer()), no sign but "-". Whole numbers of at most 100 digits: more than any option's range, and
    # fewer than the 4300 above which Python's int() refuses a word.
    INT_WORD = /\A-?(0|[1-9][0-9]{0,99})\z/
    FLOAT_WORD = /\A(-?((0|[1-9][0-9]*)(\.[0-9]+)?|\.[0-9]+)([eE][-+]?[0-9]+)?|-?(nan|inf|infinity))\z/i

    # A command-line word in a message, alike on both sides (not inspect, which Python's repr does not match).
    def quoted(word)
      "'#{display(word)}'"
    end

    # A whole number in INT_WORD's grammar, or a UserError naming the option and the word.
    def parse_int(word, option)
      unless word.match?(INT_WORD)
        raise UserError, "argument #{option}: invalid int value: #{quoted(word)} (write a whole number in ASCII digits, " \
                         "such as 25, without separators or leading zeros)"
      end

      Integer(word, 10)
    end

    # A number in FLOAT_WORD's grammar (nan and inf included: the ranges refuse them in words of their own).
    def parse_float(word, option)
      unless word.match?(FLOAT_WORD)
        raise UserError, "argument #{option}: invalid float value: #{quoted(word)} (write a number in ASCII digits, " \
                         "such as 0.001 or 1e-4, without separators or leading zeros)"
      end
      return Float::NAN if word.match?(/nan\z/i)
      return word.start_with?("-") ? -Float::INFINITY : Float::INFINITY if word.match?(/inf(inity)?\z/i)

      Float(word)
    end

    # One of choices, spelled in full: a prefix is not completed (OptionParser completes one).
    def parse_choice(word, option, choices)
      return word if choices.include?(word)

      raise UserError, "argument #{option}: invalid choice: #{quoted(word)} (choose from #{choices.map { |c| quoted(c) }.join(", ")})"
    end

    # The message for a word no option or argument takes; an abbreviation is told the options it stands for.
    def unrecognized(word, options)
      name = word.split("=", 2).first
      meant = options.select { |option| name.start_with?("--") && option.start_with?(name) }
      return "unrecognized argument #{quoted(word)}: options are not abbreviated (did you mean #{meant.join(" or ")}?)" if meant.any?

      "unrecognized argument #{quoted(word)}"
    end

    # A float as Python's repr writes it (nan, inf, -1.0, 1e+30), so that messages read alike.
    def python_float(value)
      return "nan" if value.nan?
      return value.positive? ? "inf" : "-inf" if value.infinite?

      value.to_s.sub(/\.0e/, "e")
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

    # Runs a command-line entry point; a user's problem (a UserError, or what the system reports about a
    # file: not found, no permission, disk full, with its path) becomes one line and exit 2, never a backtrace.
    def run_cli(program = File.basename($PROGRAM_NAME))
      yield
    rescue UserError, SystemCallError => e
      warn "#{program}: error: #{one_line(e.message)}"
      exit EXIT_USER_ERROR
    rescue Interrupt
      warn "#{program}: interrupted"
      exit 130
    end
  end

  # OptionParser with errors.py's grammar for options: every option in full (OptionParser completes
  # "--epo" to --epochs, "-e" too), its errors in argparse's words, one line ("…; see COMMAND --help") and
  # exit 2 through run_cli. The twin of errors.py's ArgumentParser; the blocks of `on` convert values with
  # Errors.parse_int, parse_float and parse_choice, as argparse's type= does.
  class ArgumentParser < OptionParser
    def initialize(prog, banner = nil)
      @prog = prog
      super(banner) do |parser|
        # first, as argparse's: OptionParser's own --help answers "-h" only by completing it, now refused
        parser.on("-h", "--help", "show this help message and exit") do
          puts parser.help
          exit
        end
        yield parser if block_given?
      end
    end

    def error(message)
      raise UserError, "#{message}; see #{@prog} --help"
    end

    # The long options, in the order they were declared.
    def long_options
      top.long.keys.map { |name| "--#{name}" }
    end

    # The words that are not options (OptionParser's permute!), every option checked first.
    def parse_known_args(argv, into: nil)
      words = argv.dup
      check_names(words)
      begin
        permute!(words, into: into)
      rescue OptionParser::MissingArgument => e
        error("argument #{e.args.first}: expected one argument")
      rescue OptionParser::NeedlessArgument => e
        name, value = e.args.first.split("=", 2)
        error("argument #{name}: ignored explicit argument #{Errors.quoted(value.to_s)}")
      rescue OptionParser::ParseError, UserError => e
        error(e.message)
      end
    end

    # The options; a word that is not an option is refused.
    def parse_args(argv, into: nil)
      rest = parse_known_args(argv, into: into)
      error(Errors.unrecognized(rest.first, long_options)) if rest.any?
    end

    private

    # Refuses any option word that is not an option's exact name (or -h), so that OptionParser has nothing to
    # complete, and an option without its value (OptionParser takes the next word, even "--record").
    def check_names(words)
      known = long_options
      index = 0
      while index < words.size
        word = words[index]
        break if word == "--"

        if option_like?(word)
          name, value = word.split("=", 2)
          error(Errors.unrecognized(word, known)) unless known.include?(name) || top.short.key?(name.delete_prefix("-"))
          if value.nil? && top.long[name.delete_prefix("--")].is_a?(OptionParser::Switch::RequiredArgument)
            error("argument #{name}: expected one argument") if index + 1 == words.size || option_like?(words[index + 1])
            index += 1
          end
        end
        index += 1
      end
    end

    # Whether argparse takes word for an option rather than a value: a dash, not a negative number, no space.
    def option_like?(word)
      word.start_with?("-") && word != "-" && !word.match?(/\A-([0-9]+|[0-9]*\.[0-9]+)\z/) && !word.include?(" ")
    end
  end
end
