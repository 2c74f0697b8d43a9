{#-
  The attribution models of `lead_attribution` and `channel_attribution`, and the vars that
  tune them (dbt_project.yml), checked once here so a bad value stops dbt with its name.
-#}

{#- The attribution models, in the order reports show them side by side. -#}
{% macro attribution_models() %}
  {{ return([
    'first_touch',
    'last_touch',
    'last_non_direct',
    'linear',
    'position_based',
    'time_decay',
  ]) }}
{% endmacro %}

{#- `time_decay`'s half-life in days: a touch that many days older weighs half as much. -#}
{% macro time_decay_half_life_days() %}
  {{ return(positive_number_var('time_decay_half_life_days')) }}
{% endmacro %}

{#- How many steps a path of `conversion_paths` shows at most before it is shortened. -#}
{% macro path_max_steps() %}
  {%- set steps = positive_number_var('path_max_steps') -%}
  {%- if steps != steps | int or steps < 2 -%}
    {{ exceptions.raise_compiler_error(
      "The dbt var `path_max_steps` must be a whole number of steps, 2 or more; it is "
      ~ var('path_max_steps') ~ "."
    ) }}
  {%- endif -%}
  {{ return(steps | int) }}
{% endmacro %}

{% macro positive_number_var(name) %}
  {%- set value = var(name) -%}
  {%- set number = value | float(-1) -%}
  {%- if number <= 0 -%}
    {{ exceptions.raise_compiler_error(
      "The dbt var `" ~ name ~ "` must be a positive number; it is " ~ value ~ "."
    ) }}
  {%- endif -%}
  {{ return(number) }}
{% endmacro %}

{#- Seconds since 1970 of a timestamp, with its fraction, in DuckDB and PostgreSQL alike. -#}
{% macro epoch_seconds(timestamp) %}
  cast(extract(epoch from {{ timestamp }}) as {{ type_double() }})
{% endmacro %}

{#- Credits and their sums: dbt.type_float() is 4 bytes in DuckDB, too coarse for them. -#}
{% macro type_double() %}double precision{% endmacro %}
