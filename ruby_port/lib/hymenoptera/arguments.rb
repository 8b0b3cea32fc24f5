# frozen_string_literal: true

require_relative "errors"

module Hymenoptera
  # argparse as every entry point uses it, in Ruby (the twin of reference_py/arguments.py's ArgumentParser): each
  # entry point declares its options and positionals in one table with add_argument and argparse's keywords,
  # parse_args returns their values by dest, read with errors.rb's grammar (type: Integer or Float, choices:), or
  # raises a UserError in argparse's words, ending in "; see COMMAND --help" (one line, exit 2 through run_cli).
  # As argparse: options only in full, "--" ends the options, an option's value never starts with "-" (but a
  # negative number), unknown words are reported after the rest is read.
  class ArgumentParser
    # One row of the table. nargs: nil (one word), a count, or "+" (one or more); action: :store, :store_true, :help.
    Argument = Struct.new(:names, :dest, :type, :choices, :default, :nargs, :action, :metavar, :required, :help,
                          keyword_init: true) do
      def option?
        names.first.start_with?("-")
      end

      # How argparse names it in a message: the option, or a positional's metavar (else its dest).
      def display_name
        option? ? names.join("/") : (metavar || dest).to_s
      end

      def read(word)
        option = names.find { |name| name.start_with?("--") } || display_name
        return Errors.parse_int(word, option) if type == Integer
        return Errors.parse_float(word, option) if type == Float
        return Errors.parse_choice(word, option, choices) if choices

        word
      end

      def metavars
        words = Array(metavar || (choices ? "{#{choices.join(",")}}" : (option? ? dest.to_s.upcase : dest.to_s)))
        return words * nargs if nargs.is_a?(Integer) && words.size == 1
        return [words.first, "[#{words.first} ...]"] if nargs == "+"

        words
      end

      def invocation
        return metavars.join(" ") unless option?
        return names.join(", ") unless action == :store

        names.map { |name| [name, *metavars].join(" ") }.join(", ")
      end
    end

    HELP_WIDTH = 78 # argparse's at 80 columns
    HELP_COLUMN = 24

    attr_reader :prog

    def initialize(prog, description: nil)
      @prog = prog
      @description = description
      @arguments = []
      add_argument("-h", "--help", action: :help, help: "show this help message and exit")
    end

    def add_argument(*names, type: nil, choices: nil, default: nil, nargs: nil, action: :store, metavar: nil,
                     required: false, help: nil, dest: nil)
      dest ||= (names.find { |name| name.start_with?("--") } || names.first).sub(/\A-+/, "").tr("-", "_").to_sym
      default = false if action == :store_true
      @arguments << Argument.new(names: names, dest: dest.to_sym, type: type, choices: choices&.to_a, default: default,
                                 nargs: nargs, action: action, metavar: metavar, required: required, help: help)
    end

    def error(message)
      raise UserError, "#{message}; see #{@prog} --help"
    end

    # The long options, in the order they were declared (the suggestions of Errors.unrecognized).
    def long_options
      @arguments.select(&:option?).flat_map(&:names).select { |name| name.start_with?("--") }
    end

    # The values by dest, defaults included; a word no argument takes, a missing or malformed value, a missing
    # required argument is a UserError.
    def parse_args(argv)
      values = @arguments.reject { |a| a.action == :help }.to_h { |a| [a.dest, a.default] }
      given = []
      positionals = [] # [index, word, after "--"]
      extras = [] # the same, for words nothing takes
      words = argv.map(&:to_s)
      separator = nil
      index = 0
      while index < words.size
        word = words[index]
        if separator.nil? && word == "--"
          separator = index
        elsif separator || !option_like?(word)
          positionals << [index, word, !separator.nil?]
        elsif (argument = option(word.split("=", 2).first))
          index = read_option(argument, word, words, index, values)
          given << argument
        else
          extras << [index, word, false]
        end
        index += 1
      end
      extras.concat(read_positionals(positionals, values, given))
      missing = @arguments.select { |a| (a.required || !a.option?) && !given.include?(a) }
      error("the following arguments are required: #{missing.map(&:display_name).join(", ")}") if missing.any?
      _, word, after = extras.min_by(&:first)
      error(Errors.unrecognized(word, long_options, after_separator: after)) if word
      values
    end

    def help
      lines = ["usage: #{usage}", ""]
      lines += [wrap(@description, HELP_WIDTH).join("\n"), ""] if @description
      positionals, options = @arguments.partition { |a| !a.option? }
      [["positional arguments:", positionals], ["options:", options]].each do |title, arguments|
        next if arguments.empty?

        lines << title
        arguments.each { |argument| lines.concat(help_lines(argument)) }
        lines << ""
      end
      lines.join("\n").rstrip
    end

    private

    # Whether argparse takes word for an option rather than a value: a dash, not a negative number, no space.
    def option_like?(word)
      word.start_with?("-") && word != "-" && !word.match?(/\A-([0-9]+|[0-9]*\.[0-9]+)\z/) && !word.include?(" ")
    end

    def option(name)
      @arguments.find { |a| a.option? && a.names.include?(name) }
    end

    # Reads the option at words[index] (and its values after it); returns the index of its last word.
    def read_option(argument, word, words, index, values)
      name, explicit = word.split("=", 2)
      case argument.action
      when :help
        puts help
        exit
      when :store_true
        error("argument #{name}: ignored explicit argument #{Errors.quoted(explicit)}") if explicit
        values[argument.dest] = true
        return index
      end
      fewest = argument.nargs.is_a?(Integer) ? argument.nargs : 1
      following = words[index + 1..].take_while { |w| !option_like?(w) }
      taken = explicit ? [explicit] : (argument.nargs == "+" ? following : following.first(fewest))
      expected = {nil => "one argument", "+" => "at least one argument"}.fetch(argument.nargs) do
        "#{argument.nargs} argument#{"s" unless argument.nargs == 1}"
      end
      error("argument #{name}: expected #{expected}") if taken.size < fewest
      taken = taken.map { |w| read(argument, w) }
      values[argument.dest] = argument.nargs.nil? ? taken.first : taken
      index + (explicit ? 0 : taken.size)
    end

    # Gives each positional its word, in order; returns the words left over.
    def read_positionals(positionals, values, given)
      @arguments.reject(&:option?).each do |argument|
        break if positionals.empty?

        values[argument.dest] = read(argument, positionals.shift[1])
        given << argument
      end
      positionals
    end

    def read(argument, word)
      argument.read(word)
    rescue UserError => e
      error(e.message)
    end

    def usage
      parts = @arguments.partition(&:option?).flatten.map do |argument|
        words = argument.option? ? [argument.names.first, *(argument.metavars if argument.action == :store)] : argument.metavars
        argument.required || !argument.option? ? words.join(" ") : "[#{words.join(" ")}]"
      end
      indent = " " * "usage: #{@prog} ".size
      lines = [+""]
      parts.each do |part|
        lines << +"" if !lines.last.empty? && indent.size + lines.last.size + 1 + part.size > HELP_WIDTH
        lines.last << " " unless lines.last.empty?
        lines.last << part
      end
      "#{@prog} #{lines.join("\n#{indent}")}"
    end

    def help_lines(argument)
      invocation = "  #{argument.invocation}"
      help = argument.help ? wrap(argument.help, HELP_WIDTH - HELP_COLUMN) : []
      return [invocation] if help.empty?

      first = invocation.size <= HELP_COLUMN - 2 ? [invocation.ljust(HELP_COLUMN) + help.shift] : [invocation]
      first + help.map { |line| (" " * HELP_COLUMN) + line }
    end

    def wrap(text, width)
      text.split.each_with_object([]) do |word, lines|
        if lines.empty? || "#{lines.last} #{word}".size > width
          lines << word
        else
          lines[-1] = "#{lines.last} #{word}"
        end
      end
    end
  end
end
