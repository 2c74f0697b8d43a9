{#-
  A reconcile (the job `reconcile-leads-to-warehouse`) reads every lead, and the loader then
  flags the rows of leads LeadTrackr no longer has: `_sdc_deleted_at` is set, the row stays.
  The models read only the rows without it; a table loaded without the loader's metadata
  columns has no such column, and every row counts.
-#}

{#- `where _sdc_deleted_at is null` for a relation that has the column, else nothing. -#}
{% macro where_not_deleted(relation) %}
  {#- Column names are only known when dbt runs SQL, not while it parses the project. -#}
  {%- if execute -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- if '_sdc_deleted_at' in columns -%}
      where _sdc_deleted_at is null
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
