{#-
  The `projects` setting loads several LeadTrackr projects into one table, with a `project`
  column. Every model carries that column when the loaded tables have it, and every key
  includes it; without it the models are the same, minus the column.
-#}

{% macro has_project_column() %}
  {#- Column names are only known when dbt runs SQL, not while it parses the project. -#}
  {%- if not execute -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set columns = adapter.get_columns_in_relation(source('leadtrackr', 'leads')) -%}
  {{ return('project' in columns | map(attribute='name') | map('lower') | list) }}
{% endmacro %}

{#- `columns` preceded by the project column when there is one: `project, lead_id`. -#}
{% macro with_project(columns, alias=none) %}
  {%- if has_project_column() -%}
    {{ alias ~ '.' if alias }}project{{ ', ' ~ columns if columns }}
  {%- else -%}
    {{ columns }}
  {%- endif -%}
{% endmacro %}

{#- A join condition's part for the project: `and l.project = t.project`, or nothing. -#}
{% macro same_project(left, right) %}
  {%- if has_project_column() -%}
    and {{ left }}.project = {{ right }}.project
  {%- endif -%}
{% endmacro %}
