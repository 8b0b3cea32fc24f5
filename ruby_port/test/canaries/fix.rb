# frozen_string_literal: true

# The fixes room, ruby_port/lib/pytorch_parity/{torch,torchvision}/, as its files' headers describe it:
#
#   # Fix: GEM VERSION, UPSTREAM CLASS (UPSTREAM FILE)
#   # Bug: what upstream does (continued on lines indented by two more spaces)
#   # Reproduction:
#   #   a few lines of Ruby on the installed gems; the last one's value is what upstream gives
#   # Upstream gives: that value, as Ruby inspects it (or "raises ErrorClass")
#   # Python gives: what PyTorch or torchvision gives for the same (optional)
#   # In Python: the same in Python (optional)
#
# or, for a file that only serves another fix, "# Part of: THAT FIX". The canaries
# (ruby_port/test/canaries/**/*_test.rb) run the reproductions twice: in a process of their own
# without pytorch_parity (`ruby fix.rb --upstream NAME...`: the header's "Upstream gives") and with it
# (the header's "Python gives"). The README's table is made from the headers:
# `ruby ruby_port/test/canaries/fix.rb` rewrites it.
require "json"
require "open3"
require "tmpdir"
require_relative "../../lib/hymenoptera/python_reference"

module Hymenoptera
  class Fix
    PORT = File.join(PythonReference::ROOT, "ruby_port")
    ROOM = File.join(PORT, "lib/pytorch_parity")
    # The library's files that fix nothing: its set-up, its version, its image stack (image/: decoding, PIL's
    # conversions, resampling, which the fixes work on), the writers' lock and the recorder (issue
    # "Diagnose any port").
    NOT_FIXES = %w[bundle.rb version.rb image/**/*.rb lock.rb record.rb record/**/*.rb].freeze
    # What pytorch_parity.rb does not load: the recorder and the lock it takes load on their own.
    LOADED_ON_ITS_OWN = %w[lock.rb record.rb record/**/*.rb].freeze
    README = File.join(PythonReference::ROOT, "README.md")
    FIELD = /\A# (Fix|Part of|Bug|Reproduction|Upstream gives|Python gives|In Python):(.*)\n\z/
    CONTINUED = /\A#   (.*)\n\z/
    GEMS = {"torch" => "torch.rb", "torchvision" => "torchvision-ruby"}.freeze
    TABLE_START = "<!-- fixes: made from the headers in ruby_port/lib/pytorch_parity/ by " \
                  "`ruby ruby_port/test/canaries/fix.rb` -->"
    TABLE_END = "<!-- end of fixes -->"

    attr_reader :name, :fields

    def self.all
      Dir.glob("**/*.rb", base: ROOM).reject { |name| not_fix?(name) }.sort.map { |name| new(name) }
    end

    def self.not_fix?(name)
      matches?(name, NOT_FIXES)
    end

    def self.matches?(name, patterns)
      patterns.any? { |pattern| File.fnmatch?(pattern, name, File::FNM_PATHNAME) }
    end

    # The README's table of fixes: one row per fix, its parts named with it.
    def self.readme_table
      fixes = all
      rows = fixes.reject(&:part_of).map do |fix|
        parts = fixes.select { |part| part.part_of == fix.name }.map { |part| "`#{File.basename(part.name)}`" }
        file = "`#{fix.name}`#{" (with #{parts.join(', ')})" unless parts.empty?}"
        python = [fix.fields["Python gives"], fix.fields["In Python"] && "`#{fix.fields['In Python']}`"].compact.join(": ")
        [file, fix.fields.fetch("Fix"), fix.fields.fetch("Bug"), "`#{fix.fields.fetch('Reproduction').gsub("\n", '; ')}`",
         fix.fields.fetch("Upstream gives"), python.empty? ? "(no such value)" : python]
      end
      lines = ["| file (under `ruby_port/lib/pytorch_parity/`) | changes | because upstream | reproduction | upstream gives | Python gives |",
               "|---|---|---|---|---|---|"] + rows.map { |row| "| #{row.map { |cell| cell.gsub('|', '\\|') }.join(' | ')} |" }
      [TABLE_START, *lines, TABLE_END].join("\n")
    end

    # The README's table as it stands: nil without its markers.
    def self.readme_section(text = File.read(README))
      start = text.index(TABLE_START) or return nil
      finish = text.index(TABLE_END, start) or return nil
      text[start...(finish + TABLE_END.size)]
    end

    def self.write_readme
      text = File.read(README)
      section = readme_section(text) or abort "#{README}: no #{TABLE_START} ... #{TABLE_END} section"
      File.write(README, text.sub(section) { readme_table })
    end

    def initialize(name)
      @name = name
      @fields = {}
      key = nil
      File.foreach(File.join(ROOM, name)) do |line|
        if (field = FIELD.match(line))
          key = field[1]
          @fields[key] = field[2].strip
        elsif key && (more = CONTINUED.match(line))
          @fields[key] = key == "Reproduction" ? [@fields[key], more[1]].reject(&:empty?).join("\n") : "#{@fields[key]} #{more[1]}"
        elsif key
          break
        end
      end
    end

    def path
      "ruby_port/lib/pytorch_parity/#{name}"
    end

    def gem
      GEMS.fetch(name.split("/").first)
    end

    def part_of
      fields["Part of"]
    end

    # This file and those that are part of it: what to delete when upstream is fixed.
    def files
      [path] + Fix.all.select { |fix| fix.part_of == name }.map(&:path)
    end

    # The reproduction run in this process, its value as the header writes it ("raises ErrorClass").
    # Temporary folders it makes go into a folder of its own, removed after.
    def reproduce
      Dir.mktmpdir("pytorch-parity-canary") do |scratch|
        previous, ENV["TMPDIR"] = ENV["TMPDIR"], scratch
        eval(fields.fetch("Reproduction"), Object.new.instance_eval { binding }, path).inspect # rubocop:disable Security/Eval
      rescue StandardError => e
        "raises #{e.class}"
      ensure
        ENV["TMPDIR"] = previous
      end
    end

    # Every fix's reproduction run on the installed gems alone, in a process without pytorch_parity:
    # name => its value as the header writes it. Made once per test process.
    def self.upstream_values
      @upstream_values ||= begin
        command = [RbConfig.ruby, __FILE__, "--upstream", *all.reject(&:part_of).map(&:name)]
        out, err, status = Open3.capture3({"OMP_NUM_THREADS" => "1", "BUNDLE_GEMFILE" => File.join(PythonReference::ROOT, "Gemfile")},
                                          *command)
        raise "the reproductions without pytorch_parity failed (#{status}): #{err}" unless status.success?

        JSON.parse(out)
      end
    end

    # The reproductions of names on the installed gems, without pytorch_parity, as JSON on stdout.
    def self.print_upstream_values(names)
      require "bundler/setup"
      require "json"
      require "tmpdir"
      require "torch"
      require "torchvision"
      abort "pytorch_parity is loaded: the upstream values need the gems alone" if defined?(PytorchParity::TensorMemory)
      puts JSON.generate(names.to_h { |name| [name, new(name).reproduce] })
    end

    # "Python gives" as a Ruby value (True, False, None and tuples read as Ruby's), nil without one.
    def python_value
      text = fields["Python gives"] or return nil
      eval(text.gsub("True", "true").gsub("False", "false").gsub("None", "nil").tr("()", "[]")) # rubocop:disable Security/Eval
    end
  end
end

if $PROGRAM_NAME == __FILE__
  if ARGV.first == "--upstream"
    Hymenoptera::Fix.print_upstream_values(ARGV.drop(1))
  else
    Hymenoptera::Fix.write_readme
  end
end
