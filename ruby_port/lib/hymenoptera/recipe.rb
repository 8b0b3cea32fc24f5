# frozen_string_literal: true

module Hymenoptera
  # The tutorial's recipe, in one place: its settings (default and help) and its strategies (mirrors
  # reference_py/recipe.py; parity/test_options.py checks the two agree). Every entry point reads these
  # two tables: Train's option parser, Summary, FixturesFormat (its PROTOCOL), Strategies, the Rakefile,
  # bench/workload.rb. Adding a strategy is one row of STRATEGY_TABLE here and one in recipe.py. No torch
  # here: the help and the checks need none.
  module Recipe
    Setting = Struct.new(:type, :default, :help, :replay, keyword_init: true)
    # groups: SGD's parameter groups, [part, rate setting] each; part is "trainable", "backbone" or "head".
    Strategy = Struct.new(:architecture, :pretrained, :trains, :groups, :about, keyword_init: true)

    # In order: SGD's parameter groups and the replay's protocol keep this order.
    STRATEGY_TABLE = {
      "finetune" => Strategy.new(architecture: "resnet18", pretrained: true, trains: "all", groups: [%w[trainable lr]],
                                 about: "ResNet-18, all parameters at lr (the tutorial's model_ft)"),
      "feature_extractor" => Strategy.new(architecture: "resnet18", pretrained: true, trains: "head",
                                          groups: [%w[trainable lr]],
                                          about: "ResNet-18, only fc learns (the tutorial's model_conv)"),
      "backbone_lr" => Strategy.new(architecture: "resnet18", pretrained: true, trains: "all",
                                    groups: [%w[backbone backbone_lr], %w[head head_lr]],
                                    about: "ResNet-18, two groups: the backbone at backbone_lr, fc at head_lr"),
      "scratch" => Strategy.new(architecture: "resnet18", pretrained: false, trains: "all", groups: [%w[trainable lr]],
                                about: "ResNet-18 without pretrained weights, all parameters at lr"),
      "vgg16_feature_extractor" => Strategy.new(architecture: "vgg16", pretrained: true, trains: "head",
                                                groups: [%w[trainable lr]],
                                                about: "VGG-16, features frozen, the classifier replaced by Linear(25088, 2)")
    }.freeze

    SETTINGS = {
      "strategy" => Setting.new(type: "choice", default: "finetune", help: "how the model learns"),
      "epochs" => Setting.new(type: "int", default: 25, help: "passes over the training images", replay: 2),
      "batch_size" => Setting.new(type: "int", default: 4, help: "images per step", replay: 4),
      "lr" => Setting.new(type: "float", default: 0.001, help: "learning rate", replay: 0.001),
      "momentum" => Setting.new(type: "float", default: 0.9, help: "SGD's momentum", replay: 0.9),
      "backbone_lr" => Setting.new(type: "float", default: 1e-4, help: "the backbone's learning rate", replay: 1e-4),
      "head_lr" => Setting.new(type: "float", default: 1e-3, help: "the head's learning rate", replay: 1e-3),
      # 1 in the replay, not the tutorial's 7: the scheduler acts within the replay's 2 epochs
      "step_size" => Setting.new(type: "int", default: 7, help: "StepLR: decay the learning rate every N epochs",
                                 replay: 1),
      "gamma" => Setting.new(type: "float", default: 0.1, help: "StepLR: by this factor", replay: 0.1),
      "workers" => Setting.new(type: "int", default: 4,
                               help: "DataLoader worker processes (num_workers, as the tutorial; 0 loads in this process)")
    }.freeze

    # Where each architecture's pretrained weights are by default (pretrained.py's --out; the trainers make them there).
    WEIGHTS = {"resnet18" => "net.pth", "vgg16" => "vgg16.pth"}.freeze

    # The replay protocol's settings: counts (at least 1) and rates (finite, at least 0), as train and replay check them.
    COUNTS = SETTINGS.select { |_, s| !s.replay.nil? && s.type == "int" }.keys.freeze
    RATES = SETTINGS.select { |_, s| !s.replay.nil? && s.type == "float" }.keys.freeze

    module_function

    def default(name)
      SETTINGS.fetch(name).default
    end

    def flag(name)
      "--#{name.tr("_", "-")}"
    end

    def choices(name)
      name == "strategy" ? STRATEGY_TABLE.keys : nil
    end

    # The strategies that train at rate setting name.
    def users(name)
      STRATEGY_TABLE.select { |_, row| row.groups.any? { |_, rate| rate == name } }.keys
    end

    # The help line of setting name, the same words in both languages' --help.
    def help_text(name)
      setting = SETTINGS.fetch(name)
      words = setting.help
      if name == "strategy"
        words = "#{words}: one of #{STRATEGY_TABLE.keys.join(", ")}"
      elsif users(name).any?
        words = "#{words} (#{users(name).join(", ")})"
      end
      "#{words} (default #{setting.default})"
    end

    # --weights' help line in both trainers: the default file of the default strategy's architecture, and of
    # each other architecture the strategies that use it.
    def weights_help
      default_arch = STRATEGY_TABLE.fetch(SETTINGS.fetch("strategy").default).architecture
      defaults = ["./#{WEIGHTS.fetch(default_arch)}"]
      WEIGHTS.each do |arch, path|
        strategies = STRATEGY_TABLE.select { |_, row| row.architecture == arch && row.pretrained }.keys
        defaults << "for #{strategies.join(", ")} ./#{path}" if arch != default_arch && strategies.any?
      end
      "#{WEIGHTS.fetch(default_arch)} from reference_py/pretrained.py (default: #{defaults.join(", ")}, made if missing)"
    end

    # FixturesFormat::PROTOCOL: every setting the replay fixes, at its replay value, in table order.
    def replay_protocol
      SETTINGS.reject { |_, s| s.replay.nil? }.transform_values(&:replay)
    end

    # The tables as plain data (parity/test_options.py compares this with recipe.py's describe).
    def describe
      {
        "settings" => SETTINGS.to_h do |name, s|
          [name, {"type" => s.type, "default" => s.default, "flag" => flag(name), "help" => help_text(name),
                  "replay" => s.replay}]
        end,
        "strategies" => STRATEGY_TABLE.transform_values do |s|
          {"architecture" => s.architecture, "pretrained" => s.pretrained, "trains" => s.trains,
           "groups" => s.groups, "about" => s.about}
        end,
        "weights" => WEIGHTS.transform_values { |path| {"path" => path} },
        "weights_help" => weights_help
      }
    end
  end
end

if $PROGRAM_NAME == __FILE__
  require "json"
  puts JSON.pretty_generate(Hymenoptera::Recipe.describe)
end
