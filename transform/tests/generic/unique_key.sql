{#- No two rows share `columns` (and the project, when there is one). -#}
{% test unique_key(model, columns) %}

select {{ with_project(columns | join(', ')) }}, count(*) as rows_with_key
from {{ model }}
group by {{ with_project(columns | join(', ')) }}
having count(*) > 1

{% endtest %}
