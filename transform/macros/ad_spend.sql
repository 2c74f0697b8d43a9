{#-
  The optional ad spend that `channel_attribution` joins (docs/models.md). The dbt var
  `ad_spend` names it: a model or seed of this project by its name, or a table or view
  already in the warehouse as `schema.table`. Meltano's dbt utilities set the var from their
  `ad_spend` setting; empty, there is no spend.
-#}

{% macro ad_spend_columns() %}
  {{ return(['date', 'source', 'medium', 'campaign', 'spend']) }}
{% endmacro %}

{#- The spend relation, or none without one. A name that gives no usable relation stops dbt. -#}
{% macro ad_spend_relation() %}
  {%- set name = (var('ad_spend') or '') | trim -%}
  {%- if not name -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set parts = name.split('.') -%}
  {%- if parts | length == 1 -%}
    {#- ref(), not a lookup: dbt then builds the model or seed before the attribution. -#}
    {%- set relation = ref(name) -%}
  {%- elif parts | length <= 3 -%}
    {%- set relation = api.Relation.create(
      database=parts[0] if parts | length == 3 else target.database,
      schema=parts[-2],
      identifier=parts[-1],
    ) -%}
  {%- else -%}
    {{ exceptions.raise_compiler_error(
      "The dbt var `ad_spend` must be `schema.table` or a model's name; it is " ~ name ~ "."
    ) }}
  {%- endif -%}
  {#- While dbt parses the project, nothing is looked up in the warehouse. -#}
  {%- if execute -%}
    {%- set found = load_relation(relation) -%}
    {%- if found is none -%}
      {{ exceptions.raise_compiler_error(
        "The dbt var `ad_spend` names " ~ name ~ ", which is not in the warehouse: give a "
        ~ "table or view as `schema.table`, or a model or seed of transform/ by its name."
      ) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list -%}
    {%- set missing = ad_spend_columns() | reject('in', columns) | list -%}
    {%- if missing -%}
      {{ exceptions.raise_compiler_error(
        "The ad spend in " ~ name ~ " (dbt var `ad_spend`) lacks the column(s) "
        ~ missing | join(', ') ~ ": it needs " ~ ad_spend_columns() | join(', ') ~ "."
      ) }}
    {%- endif -%}
    {%- set relation = found -%}
  {%- endif -%}
  {{ return(relation) }}
{% endmacro %}

{#- Whether the spend relation says which project each row belongs to. -#}
{% macro ad_spend_has_project(relation) %}
  {%- if not execute -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set found = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
  {{ return('project' in found) }}
{% endmacro %}
